"""Two CPU processes under `accelerate launch` (gloo) give what one process gives.

`accelerate launch --cpu` starts several processes only through MPI; with CUDA hidden,
`accelerate launch --multi_gpu --num_processes 2` starts two CPU processes that talk over gloo
(accelerate's MULTI_CPU mode), which is what this test needs.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from test_weighted_trainer import _one_step

WORKER = Path(__file__).with_name("_dist_worker.py")


def _launch(*args, tmp_path):
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
    cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", str(WORKER), *map(str, args)]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def test_one_step_on_two_processes_equals_one_process(tiny_model, tiny_model_dir, tmp_path):
    out = tmp_path / "two.pt"
    _launch("train", tiny_model_dir, out, tmp_path=tmp_path)
    two = torch.load(out)
    one, _, _ = _one_step(tiny_model, tmp_path, 8, 1)
    assert two.keys() == one.keys()
    for n in one:
        torch.testing.assert_close(two[n], one[n], atol=1e-5, rtol=0, msg=n)


def test_a_study_trains_lora_through_accelerate_launch(write_params, tmp_path, monkeypatch):
    from relalign import answering, stages

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    path = write_params({"training": {"mode": "lora", "views": "variations", "lora": {
        "num_processes": 2, "batch_size": 4, "micro_batch_size": 2,
        "launch_args": ["--multi_gpu", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]}}})
    run = stages.open_run(path, tmp_path / "run")
    weak = stages.weak_supervisor(run)  # trained by two processes, then loaded here
    folder = tmp_path / "run" / "trained" / "weak" / "supervisor"
    assert (folder / "adapter" / "adapter_config.json").is_file()
    assert (folder / "fingerprint.txt").read_text() == answering.fingerprint_of(run, stages.job(run, "weak", "supervisor"))
    assert 0 <= weak["accuracy"] <= 1


def test_shutdown_is_a_no_op_outside_a_process_group():
    import torch.distributed as dist

    from relalign.distributed import shutdown

    assert not dist.is_initialized()
    shutdown()  # must neither raise nor start anything
    assert not dist.is_initialized()
