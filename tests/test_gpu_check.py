"""The GPU check takes the same code path on the CPU at a tiny size, so a GPU session finds it working."""

import json

from relalign import gpu_check


def test_gpu_check_path_runs_on_cpu_at_tiny_size():
    out = gpu_check.run(hidden=64, layers=2, n_prompts=12, train_rows=24, gen_prompts=8, new_tokens=4, device="cpu")
    assert out["scoring_finite"] is True
    assert out["scoring_prompts_per_s"] > 0 and out["generation_new_tokens_per_s"] > 0
    for key in ("training", "training_checkpointed"):
        assert out[f"{key}_steps"] == 1  # 24 rows, effective batch 24
        assert out[f"{key}_loss"] > 0


def test_gpu_check_without_cuda_says_so_and_exits_0(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(json_path=str(tmp_path / "r.json")) == 0
    assert json.loads((tmp_path / "r.json").read_text())["cuda"] is False
    assert "no CUDA" in capsys.readouterr().out
