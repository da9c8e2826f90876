"""Timing real forward passes, for comparison with the estimates.

CPU: wall-clock time of whole forward passes. CUDA: CUDA events around each forward
(after synchronizing), the GPU's name and board power read through nvidia-ml-py (NVML)
when it is installed and a driver answers; without a GPU those readings are skipped.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Optional


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


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def measure(name: str, *, seconds: float, device: str, warmup: int, repeats: int,
            overrides: Optional[dict] = None) -> Measurement:
    import torch

    import models
    from models.constants import SAMPLE_RATE

    model = models.build(name, seed=0, **(overrides or {})).eval().to(device)
    samples = int(round(seconds * SAMPLE_RATE))
    generator = torch.Generator().manual_seed(0)
    wave = torch.randn(1, samples, generator=generator).to(device)
    notes = []
    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        gpu, handle, why = gpu_info(index)
        device_name = gpu or torch.cuda.get_device_name(index)
        if why:
            notes.append(why)
    else:
        device_name, handle = f"{cpu_name()} ({torch.get_num_threads()} threads)", None
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
                start = time.perf_counter()
                model(wave)
                elapsed = time.perf_counter() - start
            if step >= warmup:
                times.append(elapsed)
    return Measurement(name, device, device_name, seconds, times,
                       statistics.median(powers) if powers else None, notes)
