"""Two processes under torchrun (DDP over gloo) train exactly like one process that
accumulates the same two micro-batches."""
import json
import os
import subprocess
import sys

import torch
from conftest import ROOT
from train_fixtures import TINY_MODEL, TINY_OVERRIDE_ARGS, tiny_corpus

from models.trainer.pretrain import checkpoint as ckpt

COMMON = ["--model", TINY_MODEL, *TINY_OVERRIDE_ARGS, "--steps", "2", "--batch-size", "2",
          "--crop-seconds", "0.5", "--clusters", "8", "--warmup-steps", "1", "--save-every", "2",
          "--quiet"]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"        # the same thread count in every process
    env.setdefault("PYTHONWARNINGS", "ignore")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _run(args, timeout=240):
    result = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=_env(),
                            timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_two_process_gloo_run_matches_single_process_accumulation(tmp_path):
    data = tiny_corpus(tmp_path / "corpus")
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
          "-m", "profiler", "train", *COMMON, "--data", str(data), "--out", str(ddp)])
    _run([sys.executable, "-m", "profiler", "train", *COMMON, "--accumulate", "2",
          "--data", str(data), "--out", str(single)])

    meta = json.loads((ddp / "metadata.json").read_text())
    assert meta["world_size"] == 2 and meta["backend"] == "gloo" and meta["finished"]
    assert meta["global_batch_utterances"] == 4
    # Both replicas hold the same weights after the steps (checked byte for byte).
    assert len(meta["rank_checksums"]) == 2 and len(set(meta["rank_checksums"])) == 1
    single_meta = json.loads((single / "metadata.json").read_text())
    assert single_meta["world_size"] == 1 and single_meta["global_batch_utterances"] == 4

    a = ckpt.load_model_file(ckpt.latest_checkpoint(ddp))["model"]
    b = ckpt.load_model_file(ckpt.latest_checkpoint(single))["model"]
    assert set(a) == set(b)
    initial = ckpt.build_from_config(ckpt.read_config(ddp), seed=0).state_dict()
    moved = 0
    for name, value in a.items():
        if torch.is_tensor(value):
            # Same micro-batches, masks and dropout. With two ranks the all-reduce adds the
            # same two gradients as the accumulation does (a + b, then scaled by powers of
            # two), so the result is bit-identical.
            assert torch.equal(value, b[name]), name
            moved += int(not torch.equal(value, initial[name]))
    assert moved > 10                       # the steps really changed the weights
    assert single_meta["rank_checksums"] == meta["rank_checksums"][:1]


def test_nccl_with_more_processes_than_gpus_is_one_clear_error(monkeypatch):
    """Two torchrun processes on a machine with one GPU: NCCL itself would fail later with
    "invalid usage"; the trainer refuses first and names the fix."""
    import pytest

    from models.trainer.errors import DataError
    from models.trainer.pretrain import distributed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    for key, value in (("RANK", "1"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "1"),
                       ("LOCAL_WORLD_SIZE", "2")):
        monkeypatch.setenv(key, value)
    # A bare "cuda" is this process's GPU: local rank 1 on one GPU wraps round to cuda:0.
    assert distributed.pick_device(1, "cuda") == torch.device("cuda", 0)
    with pytest.raises(DataError, match=r"one GPU per process: 2 processes .* 1 GPU"):
        distributed.setup("cuda")
