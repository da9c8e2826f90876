"""The checks that need a GPU, as one script for a short lease of one.

    python benchmarks/device_checks.py --out DIR [--data CORPUS] [--quick]

Steps, each capped in time and run even when an earlier one failed (its log says why):

  env          torch, CUDA and the GPU's name
  calibrate    `profile-encoder calibrate --device cuda` (matrix throughput per precision,
               copy bandwidth) into DIR/gpu-calibrated.yaml
  measure      `profile-encoder measure` of the five full-precision encoders on 1, 10, 30
               and 60 s against the roofline on that calibrated catalog
  counts       every zoo model profiled on CUDA tensors with real weights and on meta
               tensors: totals and per-module counts must be equal, key by key
  ddp          a few training steps under torchrun on the NCCL backend
  pretrain     masked-prediction curves of sparseformer-dn-s and conformer-s at longer
               budgets than `--tiny` (validation masked accuracy every 100 steps), in
               parallel on the one GPU (needs --data, a corpus with pretrain/)
  attention    benchmarks/bench_sparse_attention.py on the GPU

DIR/summary.json holds each step's status and time; each step's output is in DIR/<step>.log.
Without a GPU (--device cpu --quick) every step runs at toy sizes, to try the script.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.trainer.data import PRETRAIN_SPLITS  # noqa: E402
from models.trainer.data.manifest import UNIT_LABELS, labels_path  # noqa: E402
from models.trainer.pretrain.checkpoint import CONFIG, LOG, METADATA  # noqa: E402
from models.trainer.pretrain.run_setup import TARGETS  # noqa: E402
from profiler.option_values import split_list  # noqa: E402

FULL_PRECISION = ("vanilla", "conformer-s", "squeezeformer-xs", "sparseformer-dn-s",
                  "sparseformer-sw-s")
PRETRAIN_RUNS = {  # name: (model, steps)
    "dn-s-3000": ("sparseformer-dn-s", 3000),
    "conformer-s-3000": ("conformer-s", 3000),
    "dn-s-1000": ("sparseformer-dn-s", 1000),
    "conformer-s-1000": ("conformer-s", 1000),
}


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PYTHONWARNINGS", "ignore")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _command(args: list[str], log: Path, timeout: float) -> str:
    with open(log, "a", encoding="utf-8") as out:
        out.write("$ " + " ".join(args) + "\n")
        out.flush()
        try:
            done = subprocess.run(args, cwd=ROOT, env=_env(), stdout=out,
                                  stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            out.write(f"\n[timed out after {timeout:.0f} s]\n")
            return "timeout"
    return "ok" if done.returncode == 0 else f"exit {done.returncode}"


def step_env(out: Path, a) -> str:
    import torch

    lines = [f"python {sys.version.split()[0]}", f"torch {torch.__version__}",
             f"cuda available {torch.cuda.is_available()}"]
    if torch.cuda.is_available():
        lines += [f"device {torch.cuda.get_device_name(0)}",
                  f"cuda {torch.version.cuda}", f"cudnn {torch.backends.cudnn.version()}"]
    (out / "env.log").write_text("\n".join(lines) + "\n")
    return "ok"


def step_calibrate(out: Path, a) -> str:
    size, copy_mb, duration = (256, 64, 0.1) if a.quick else (8192, 4096, 1.0)
    return _command([sys.executable, "-m", "profiler", "calibrate", "--device", a.device,
                     "--output", str(out / "gpu-calibrated.yaml"),
                     "--matrix-size", str(size), "--copy-mb", str(copy_mb),
                     "--duration", str(duration)], out / "calibrate.log", 120)


def step_measure(out: Path, a) -> str:
    catalog = out / "gpu-calibrated.yaml"
    seconds = "1" if a.quick else "1,10,30,60"
    models = "sparseformer-dn-s" if a.quick else ",".join(FULL_PRECISION)
    args = [sys.executable, "-m", "profiler", "measure", "--models", models,
            "--seconds", seconds, "--device", a.device,
            "--warmup", "3", "--repeats", "1" if a.quick else "10",
            "--output", str(out / "measure.md")]
    if catalog.is_file():
        args += ["--catalog", str(catalog)]
    return _command(args, out / "measure.log", 180)


def step_counts(out: Path, a) -> str:
    """CUDA and meta counts, equal key by key (totals and every module)."""
    import torch

    import models
    import profiler
    from models.constants import samples_in

    names = ["sparseformer-dn-s", "bq-sparseformer-dn-s"] if a.quick else models.names()
    seconds = 1 if a.quick else 10
    device = torch.device(a.device)
    rows, failures = [], 0
    for name in names:
        start = time.perf_counter()
        model = models.build(name).eval()
        wave = torch.randn(1, samples_in(seconds))
        meta = profiler.profile(model, wave).to_dict()
        real = profiler.profile(model.to(device), wave.to(device), device=device).to_dict()
        keys = sorted(set(meta["totals"]) | set(real["totals"]))
        differing = [k for k in keys if meta["totals"].get(k) != real["totals"].get(k)]
        modules = [m for m in sorted(set(meta["modules"]) | set(real["modules"]))
                   if meta["modules"].get(m) != real["modules"].get(m)]
        failures += bool(differing or modules)
        rows.append({"model": name, "seconds": seconds, "equal": not (differing or modules),
                     "differing_totals": {k: [meta["totals"].get(k), real["totals"].get(k)]
                                          for k in differing},
                     "differing_modules": modules[:20],
                     "macs": meta["totals"].get("macs"), "bops": meta["totals"].get("bops"),
                     "wall_s": round(time.perf_counter() - start, 2)})
        del model
    (out / "counts.json").write_text(json.dumps({"device": str(device), "rows": rows},
                                                indent=1) + "\n")
    return "ok" if not failures else f"{failures} models differ"


NCCL_STEP = """
import os, torch, torch.distributed as dist
import models
os.environ.setdefault("MASTER_ADDR", "127.0.0.1"); os.environ.setdefault("MASTER_PORT", "29533")
dist.init_process_group("nccl", rank=0, world_size=1)
model = models.build("sparseformer-dn-s").cuda().train()
ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[0])
out = ddp(torch.randn(2, 32000, device="cuda"))
hidden = out[0] if isinstance(out, (tuple, list)) else getattr(out, "last_hidden_state", out)
hidden.float().pow(2).mean().backward()
grads = sum(p.grad.abs().sum().item() for p in model.parameters() if p.grad is not None)
print("nccl world-size-1 DDP step: backend", dist.get_backend(), "grad sum", grads)
dist.destroy_process_group()
"""


def step_ddp(out: Path, a) -> str:
    """Our trainer under torchrun with two processes on the one GPU (NCCL may refuse two
    ranks on one device; the log says so), then one DDP step over NCCL in one process."""
    if not a.data:
        return "skipped (no --data)"
    run = Path(a.scratch) / "ddp"
    trainer = _command([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc_per_node=2", "-m", "profiler", "train",
                        "--model", "sparseformer-dn-s", "--tiny", "--steps", "20",
                        "--valid-every", "20", "--data", a.data, "--out", str(run),
                        "--device", a.device, "--quiet"], out / "ddp.log", 150)
    trainer += _copy_metadata(run, out / "ddp-metadata.json")
    if a.device == "cpu":
        return f"trainer {trainer}"
    single = _command([sys.executable, "-c", NCCL_STEP], out / "ddp.log", 90)
    return f"trainer {trainer}; nccl step {single}"


def _copy_metadata(run: Path, to: Path) -> str:
    metadata = run / METADATA
    if not metadata.is_file():
        return f" (no {METADATA})"
    to.write_text(metadata.read_text())
    return ""


def step_pretrain(out: Path, a) -> str:
    if not a.data:
        return "skipped (no --data)"
    folder = out / "pretrain"
    folder.mkdir(exist_ok=True)
    chosen = split_list(a.pretrain_runs) if a.pretrain_runs else list(PRETRAIN_RUNS)
    runs = {name: PRETRAIN_RUNS[name] for name in chosen[:1 if a.quick else None]}
    # Several runs share the machine's cores: torch's and k-means' default threads (one per
    # core in every process) oversubscribe them and stall the target preparation.
    env = {**_env(), "OMP_NUM_THREADS": str(a.pretrain_threads),
           "MKL_NUM_THREADS": str(a.pretrain_threads)}
    processes = {}
    for name, (model, steps) in runs.items():
        run = Path(a.scratch) / "pretrain" / name
        log = open(folder / f"{name}.log", "w", encoding="utf-8")
        args = [sys.executable, "-m", "profiler", "train", "--model", model, "--tiny",
                "--steps", str(20 if a.quick else steps), "--valid-every", "100",
                "--data", a.data, "--out", str(run), "--device", a.device, "--workers", "2",
                "--quiet"]
        log.write("$ " + " ".join(args) + "\n")
        log.flush()
        processes[name] = (subprocess.Popen(args, cwd=ROOT, env=env, stdout=log,
                                            stderr=subprocess.STDOUT), run, log)
    deadline = time.monotonic() + a.pretrain_seconds
    status = {}
    for name, (process, run, log) in processes.items():
        try:
            code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
            status[name] = "ok" if code == 0 else f"exit {code}"
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            status[name] = "stopped at the time limit"
        log.close()
        # What the masked-prediction report reads: the log, the settings and the units.
        target = folder / name
        target.mkdir(exist_ok=True)
        for part in (LOG, METADATA, CONFIG):
            if (run / part).is_file():
                (target / part).write_text((run / part).read_text())
        for split in PRETRAIN_SPLITS:
            units = labels_path(run / TARGETS, split, UNIT_LABELS)
            if units.is_file():
                (target / units.name).write_text(units.read_text())
    return "; ".join(f"{k}: {v}" for k, v in status.items())


def step_attention(out: Path, a) -> str:
    frames = ["500"] if a.quick else ["2000", "8000", "32000"]
    # The flex contender compiles once per length (outside the timings), hence the margin.
    return _command([sys.executable, str(ROOT / "benchmarks" / "bench_sparse_attention.py"),
                     "--device", a.device, "--repeats", "1" if a.quick else "20",
                     "--frames", *frames, "--json", str(out / "attention.json")],
                    out / "attention.log", 240)


STEPS = {"env": step_env, "calibrate": step_calibrate, "measure": step_measure,
         "counts": step_counts, "ddp": step_ddp, "pretrain": step_pretrain,
         "attention": step_attention}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the logs and results")
    parser.add_argument("--data", help="corpus folder (with pretrain/) for ddp and pretrain")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--scratch", default="/tmp/device-checks",
                        help="run folders (checkpoints) that are not kept")
    parser.add_argument("--steps", default=",".join(STEPS),
                        help="comma-separated steps to run (default all)")
    parser.add_argument("--pretrain-seconds", type=float, default=200,
                        help="time limit of the parallel pre-training runs")
    parser.add_argument("--pretrain-runs", default=None,
                        help=f"comma-separated runs of {', '.join(PRETRAIN_RUNS)} (default all)")
    parser.add_argument("--pretrain-threads", type=int, default=3,
                        help="CPU threads of each pre-training process")
    parser.add_argument("--quick", action="store_true", help="toy sizes, to try the script")
    a = parser.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for name in split_list(a.steps):
        start = time.perf_counter()
        try:
            status = STEPS[name](out, a)
        except Exception as error:  # one step's failure must not cost the others
            status = f"error: {type(error).__name__}: {error}"
        summary[name] = {"status": status, "seconds": round(time.perf_counter() - start, 1)}
        print(f"{name}: {summary[name]}", flush=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
