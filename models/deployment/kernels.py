"""The packed-product kernels (``csrc/binary_kernels.cpp``): compiled on first use through
``torch.utils.cpp_extension.load`` (ninja and a C++ compiler; cached under torch's
extensions folder, so later processes load it in well under a second), and thin typed
wrappers around them.

Kernel paths: 1 portable C++, 2 AVX2 (256-bit lookup popcount), 3 AVX-512 VPOPCNTDQ. The
best one the CPU supports runs unless ``path`` or the environment variable
``BINARY_KERNEL_PATH`` (``portable``, ``avx2``, ``avx512``) names another.
"""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Optional

import torch

SOURCE = Path(__file__).with_name("csrc") / "binary_kernels.cpp"
PATHS = {"portable": 1, "avx2": 2, "avx512": 3}
PATH_ENV = "BINARY_KERNEL_PATH"
XOR, AND = 0, 1  # signed x signed, {0, 1} x signed

_lock = threading.Lock()
_extension = None


class DeployError(RuntimeError):
    """The packed kernels cannot run here (no compiler, or a path this CPU lacks)."""


def extension():
    """The compiled extension, built on the first call of the process (cached on disk)."""
    global _extension
    with _lock:
        if _extension is None:
            _extension = _build()
    return _extension


def _build():
    compiler = os.environ.get("CXX", "c++")
    missing = [tool for tool in (compiler, "ninja") if shutil.which(tool) is None]
    if missing:
        raise DeployError(f"models.deploy compiles its packed kernels on first use and needs a "
                          f"C++ compiler (g++) and ninja: {' and '.join(missing)} not found")
    from torch.utils import cpp_extension

    try:
        return cpp_extension.load(name="encoder_binary_kernels", sources=[str(SOURCE)],
                                  extra_cflags=["-O3", "-std=c++17"], verbose=False)
    except (RuntimeError, OSError, ImportError) as error:
        last = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise DeployError(f"could not build the packed kernels with g++/ninja: {last}") from None


def supported_paths() -> list[str]:
    """Names of the kernel paths this CPU runs, best last."""
    names = {number: name for name, number in PATHS.items()}
    return [names[number] for number in extension().supported_paths()]


def path_number(path: Optional[str] = None) -> int:
    """0 (best available) or the number of the named path (argument, else environment)."""
    name = path or os.environ.get(PATH_ENV) or ""
    if not name:
        return 0
    if name not in PATHS:
        raise DeployError(f"unknown kernel path {name!r}; known: {', '.join(PATHS)}")
    if name not in supported_paths():
        raise DeployError(f"this CPU cannot run the {name} kernel path "
                          f"(it runs: {', '.join(supported_paths())})")
    return PATHS[name]


def pack_rows(x: torch.Tensor, offset: Optional[torch.Tensor] = None, alpha: float = 1.0,
              unsigned: bool = False) -> torch.Tensor:
    """(..., K) -> (..., ceil(K / 64)) int64 words of bits: ``x + offset >= 0`` (signed), or
    ``(x + offset) / alpha > 0.5`` (unsigned: BiT's {0, 1} level), or ``x`` itself (bool)."""
    lead, width = x.shape[:-1], x.shape[-1]
    empty = x.new_empty(0) if x.dtype != torch.bool else torch.empty(0)
    words = extension().pack_rows(x.reshape(-1, width), empty if offset is None else offset,
                                  float(alpha), unsigned)
    return words.view(*lead, words.size(-1))


def binary_matmul(a: torch.Tensor, b: torch.Tensor, k: int, op: int = XOR,
                  path: Optional[str] = None) -> torch.Tensor:
    """(..., M, W) x (..., N, W) packed -> (..., M, N) int32 exact products over ``k`` bits
    (``op`` XOR: both signed; AND: ``a`` in {0, 1}, ``b`` signed). Leading dims must match."""
    lead = a.shape[:-2]
    out = extension().binary_matmul(a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:]),
                                    k, op, path_number(path))
    return out.view(*lead, a.size(-2), b.size(-2))


def binary_depthwise(x: torch.Tensor, valid: Optional[torch.Tensor], w: torch.Tensor, k: int,
                     stride: int, t_out: int, unsigned: bool = False,
                     path: Optional[str] = None) -> torch.Tensor:
    """Packed depthwise convolution: rows (R, W) of channel ``r % C`` -> (R, t_out) int32."""
    empty = torch.empty(0, dtype=torch.int64)
    return extension().binary_depthwise(x, empty if valid is None else valid, w, k, stride,
                                        t_out, unsigned, path_number(path))
