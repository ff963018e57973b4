"""Converted checkpoints: a GGUF file dequantised once into an ordinary checkpoint in the cache,
with the sha256 of each of its files, checked before every use (a damaged copy is converted again,
never loaded)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

__all__ = ["SOURCE", "ModelFileError", "sha256_file", "converted_dir", "converted_is_intact", "record_files",
           "room_needed", "check_room", "convert_gguf"]


class ModelFileError(RuntimeError):
    """A model file is missing, truncated or not the pinned one, or there is no room to convert it."""


def sha256_file(*paths: Path, chunk: int = 1 << 20) -> str:
    """sha256 of the files' contents concatenated in order (one file: its own checksum), read in
    chunks, without writing the concatenation."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
    return h.hexdigest()


SOURCE = "relalign-source.json"  # in a converted checkpoint: its GGUF file and the sha256 of each file


def converted_dir(cache_dir: Path, key: str, sha: str) -> Path:
    return cache_dir / "models" / f"{key}-{sha[:16]}"


VERIFIED = "relalign-verified.json"  # size and mtime of each file when its checksum last matched


def _stats(out: Path, names) -> dict[str, list[int]]:
    return {n: [(out / n).stat().st_size, (out / n).stat().st_mtime_ns] for n in names if (out / n).is_file()}


def converted_is_intact(out: Path) -> bool:
    """Whether the converted checkpoint in ``out`` is complete and every file still has the
    checksum recorded when it was written. A damaged file is named on stderr; a checkpoint
    converted before checksums were recorded counts as not intact (it is converted again). The
    files are hashed once per version: a file whose size and modification time are those it had
    when its checksum last matched is not read again (writing to a file changes its time)."""
    manifest = out / SOURCE
    if not manifest.is_file():
        return False
    files = json.loads(manifest.read_text()).get("files")
    if not files:
        return False
    stats = _stats(out, files)
    verified = out / VERIFIED
    if len(stats) == len(files) and verified.is_file() and json.loads(verified.read_text()) == stats:
        return True
    for name, want in files.items():
        if not (out / name).is_file() or sha256_file(out / name) != want:
            print(f"relalign: {out / name} is missing or damaged (checksum differs); converting the model again",
                  file=sys.stderr, flush=True)
            return False
    try:  # a cache the user cannot write to is checked in full each time
        tmp = out / f"{VERIFIED}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(stats))
        tmp.replace(verified)
    except OSError:
        pass
    return True


def record_files(out: Path, gguf_file: str, sha: str) -> None:
    """Write ``out``'s manifest: the GGUF file it was made from, and the sha256 of each of its files."""
    files = {f.name: sha256_file(f) for f in sorted(out.iterdir()) if f.is_file() and f.name not in (SOURCE, VERIFIED)}
    (out / SOURCE).write_text(json.dumps({"gguf_file": gguf_file, "sha256": sha, "files": files}))
    (out / VERIFIED).write_text(json.dumps(_stats(out, files)))  # just hashed


TOKENIZER_ROOM = 64 << 20  # bytes kept for the tokenizer and config files beside the weights


def room_needed(gguf: Path) -> int:
    """Bytes the converted checkpoint of ``gguf`` takes: four (fp32) per weight, read from the
    file's tensor table, and the tokenizer's files."""
    from gguf import GGUFReader

    return 4 * sum(int(t.n_elements) for t in GGUFReader(gguf).tensors) + TOKENIZER_ROOM


def check_room(gguf: Path, folder: Path) -> int:
    """The bytes free on ``folder``'s disk; ModelFileError, before anything is written, when they
    cannot hold the converted checkpoint of ``gguf``."""
    need, free = room_needed(gguf), shutil.disk_usage(folder).free
    if free < need:
        raise ModelFileError(f"converting {gguf.name} needs {need / 2**30:.1f} GiB free in {folder}, and "
                             f"{free / 2**30:.1f} GiB is: free some space or point cache_dir (RELALIGN_CACHE) "
                             f"at a disk with room")
    return free


def _disk_full(e: BaseException) -> bool:
    """Whether ``e`` says the disk filled (an OSError, or the error safetensors raises for one)."""
    return getattr(e, "errno", None) == errno.ENOSPC or f"os error {errno.ENOSPC})" in str(e)


def convert_gguf(folder: Path, gguf_file: str, out: Path, sha: str) -> Path:
    """Dequantise a GGUF file once with transformers and save an ordinary checkpoint, after checking
    that its disk has room for it (a disk that fills anyway is a ModelFileError, the partial copy removed)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_room(folder / gguf_file, out.parent)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        record_files(tmp, gguf_file, sha)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)  # atomic: a half-written conversion never looks finished
    except Exception as e:
        if _disk_full(e):
            raise ModelFileError(f"the disk filled while converting {gguf_file} into {out.parent} "
                                 f"({room_needed(folder / gguf_file) / 2**30:.1f} GiB needed)") from e
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
