import numpy as np

from relalign.cache import RowStore


def _scores(keys):
    calls = []

    def compute(positions):
        calls.append([keys[i] for i in positions])
        return {"x": np.array([[len(keys[i]), i] for i in positions], dtype=np.float32)}

    return compute, calls


def test_rows_are_computed_once_and_read_back(tmp_path):
    keys = ["a", "bb", "ccc"]
    compute, calls = _scores(keys)
    first = RowStore(tmp_path).get(keys, compute)
    again = RowStore(tmp_path).get(keys[::-1], compute)
    assert calls == [keys] and np.array_equal(again["x"], first["x"][::-1])


def test_a_damaged_shard_is_named_dropped_and_computed_again_never_read(tmp_path, capsys):
    keys = ["a", "bb", "ccc"]
    compute, calls = _scores(keys)
    expected = RowStore(tmp_path).get(keys, compute)["x"]
    (shard,) = tmp_path.glob("shard-*.npz")
    data = bytearray(shard.read_bytes())
    data[len(data) // 3] ^= 0xFF  # same size, one byte flipped inside the stored arrays
    shard.write_bytes(bytes(data))
    got = RowStore(tmp_path).get(keys, compute)["x"]
    assert len(calls) == 2 and np.array_equal(got, expected)
    assert f"{shard} is damaged" in capsys.readouterr().err
