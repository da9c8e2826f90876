"""Timing real forward passes, for comparison with the estimates.

CPU: wall-clock time of whole forward passes. CUDA: CUDA events around each forward
(after synchronizing), the GPU's name and board power read through nvidia-ml-py (NVML)
when it is installed and a driver answers; without a GPU those readings are skipped.
"""
from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field
from typing import Optional, Sequence

from .calibration import CLOCKS, cpu_name


@dataclass
class Measurement:
    model: str
    device: str
    device_name: str
    seconds_of_audio: float
    times_s: list[float]
    power_w: Optional[float] = None
    notes: list[str] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)


def gpu_info(index: int = 0) -> tuple[Optional[str], Optional[object], str]:
    """(name, NVML handle, note) of GPU ``index``; ``(None, None, why)`` without one."""
    try:
        import pynvml
    except ImportError:
        return None, None, "nvidia-ml-py is not installed"
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        name = pynvml.nvmlDeviceGetName(handle)
        return (name.decode() if isinstance(name, bytes) else name), handle, ""
    except pynvml.NVMLError as error:
        return None, None, f"no NVIDIA GPU readable through NVML ({error})"


def _power_w(handle) -> Optional[float]:
    if handle is None:
        return None
    try:
        import pynvml

        return pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
    except Exception:
        return None


def build_for_timing(name: str, device: str, overrides: Optional[dict] = None):
    """Zoo model ``name`` with real (seeded) weights, in eval mode, on ``device``."""
    import models

    return models.build(name, seed=0, **(overrides or {})).eval().to(device)


def deploy_for_timing(model, seconds: float):
    """``models.deploy`` of a zoo BQ model built for timing. Its binarizers are initialized
    first by one training-mode forward (seed 0) on the utterance ``time_forward`` measures.
    ValueError for a model without binarized layers; models.DeployError without a compiler."""
    import torch

    import models

    wave = _utterance(seconds)
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model(wave.to(next(model.parameters()).device))
    model.eval()
    return models.deploy(model)


def _utterance(seconds: float):
    """The random utterance (seed 0) every timing runs on."""
    import torch

    from models.constants import samples_in

    generator = torch.Generator().manual_seed(0)
    return torch.randn(1, samples_in(seconds), generator=generator)


def device_description(device: str) -> tuple[str, Optional[object], list[str]]:
    """(name, NVML handle or None, notes) of the device timings run on."""
    import torch

    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        gpu, handle, why = gpu_info(index)
        return gpu or torch.cuda.get_device_name(index), handle, [why] if why else []
    return f"{cpu_name()} ({torch.get_num_threads()} threads)", None, []


def time_forward(model, name: str, *, seconds: float, device: str, warmup: int,
                 repeats: int, clock: str = "wall") -> Measurement:
    """Forward passes of ``model`` on one random utterance of ``seconds`` (batch 1);
    ``clock="cpu"`` times this process's CPU time instead of elapsed time (CPU only)."""
    timer = CLOCKS[clock]
    import torch

    wave = _utterance(seconds).to(device)
    device_name, handle, notes = device_description(device)
    times, powers = [], []
    with torch.inference_mode():
        for step in range(warmup + repeats):
            if device.startswith("cuda"):
                start_event = torch.cuda.Event(enable_timing=True)
                end_event = torch.cuda.Event(enable_timing=True)
                torch.cuda.synchronize()
                start_event.record()
                model(wave)
                end_event.record()
                torch.cuda.synchronize()
                elapsed = start_event.elapsed_time(end_event) / 1000.0
                power = _power_w(handle)
                if power is not None and step >= warmup:
                    powers.append(power)
            else:
                start = timer()
                model(wave)
                elapsed = timer() - start
            if step >= warmup:
                times.append(elapsed)
    return Measurement(name, device, device_name, seconds, times,
                       statistics.median(powers) if powers else None, notes)


def rank_correlation(measured: Sequence[float], estimated: Sequence[float]) -> float:
    """Spearman's rank correlation of the two series (pandas' ranks, ties averaged)."""
    import pandas as pd

    return float(pd.Series(list(measured)).corr(pd.Series(list(estimated)), method="spearman"))


def median_relative_error(measured: Sequence[float], estimated: Sequence[float]) -> float:
    """Median over pairs of |estimated - measured| / measured."""
    return statistics.median(abs(e - m) / m for m, e in zip(measured, estimated))


def load_note() -> str:
    """The machine's load when the timings ran (other processes share its cores)."""
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load average unavailable"
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"
