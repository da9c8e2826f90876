"""The packed-product kernels (``csrc/binary_kernels.cpp`` and ``csrc/binary_depthwise.cpp``):
compiled on first use through ``torch.utils.cpp_extension.load`` (ninja and a C++ compiler;
cached under torch's extensions folder, so later processes load it in well under a second),
and thin typed wrappers around them. Float32 products can leave the kernel already scaled
and biased (one pass over the output instead of three in torch).

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

SOURCES = [Path(__file__).with_name("csrc") / name
           for name in ("binary_kernels.h", "binary_kernels.cpp", "binary_depthwise.cpp",
                        "binary_attention.cpp")]
PATHS = {"portable": 1, "avx2": 2, "avx512": 3}
PATH_ENV = "BINARY_KERNEL_PATH"
XOR, AND = 0, 1  # signed x signed, {0, 1} x signed
CXX_FLAGS = ["-O3", "-std=c++17", "-ffp-contract=off"]
OPENMP_FLAGS = (["-fopenmp"] if "parallel backend: OpenMP" in torch.__config__.parallel_info()
                else [])

_lock = threading.Lock()
_extension = None


# Bits per packed word: the kernels' int64 words (the C++ sources' 64 and 63 too).
WORD_BITS = 64


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
        # -ffp-contract=off: the fused epilogue rounds product and sum apart, as torch does.
        # -fopenmp: ATen's parallel_for is an inline OpenMP region in the headers; compiled
        # without it, the pragma is dropped and every product runs on one thread.
        return cpp_extension.load(name=f"encoder_binary_kernels_{_build_digest()}",
                                  sources=[str(path) for path in SOURCES
                                           if path.suffix == ".cpp"],
                                  extra_cflags=[*CXX_FLAGS, *OPENMP_FLAGS],
                                  extra_ldflags=OPENMP_FLAGS,
                                  verbose=False)
    except (RuntimeError, OSError, ImportError) as error:
        last = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise DeployError(f"could not build the packed kernels with g++/ninja: {last}") from None


def _build_digest() -> str:
    """A short hash of the sources and flags: the extension's name carries it, so checkouts
    with different kernels never rebuild over one another in torch's shared cache."""
    import hashlib

    digest = hashlib.sha256(" ".join(CXX_FLAGS + OPENMP_FLAGS).encode())
    for path in SOURCES:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


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


def input_bits(shifted: torch.Tensor, alpha, unsigned: bool) -> torch.Tensor:
    """The bits :func:`pack_rows` makes of ``shifted = x + offset``, unpacked (a bool
    tensor): ``shifted >= 0`` signed, ``shifted / alpha > 0.5`` unsigned."""
    return shifted / alpha > 0.5 if unsigned else shifted >= 0


def pack_rows(x: torch.Tensor, offset: Optional[torch.Tensor] = None, alpha=1.0,
              unsigned: bool = False, path: Optional[str] = None) -> torch.Tensor:
    """(..., K) -> (..., ceil(K / 64)) int64 words of bits: ``x + offset >= 0`` (signed), or
    ``(x + offset) / alpha > 0.5`` (unsigned: BiT's {0, 1} level), or ``x`` itself (bool).
    float32 rows are compared 8 at a time on the avx2 and avx512 paths. ``alpha``: a number
    or a one-element tensor."""
    lead, width = x.shape[:-1], x.shape[-1]
    rows = x.reshape(-1, width)
    if _on_meta(x, offset):
        words = torch.ops.encoder_binary.pack_rows(rows, offset, 1.0, unsigned)
    else:
        empty = x.new_empty(0) if x.dtype != torch.bool else torch.empty(0)
        words = extension().pack_rows(rows, empty if offset is None else offset, float(alpha),
                                      unsigned, path_number(path))
    return words.view(*lead, words.size(-1))


def binary_matmul(a: torch.Tensor, b: torch.Tensor, k: int, op: int = XOR,
                  path: Optional[str] = None, scale: Optional[torch.Tensor] = None,
                  bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """(..., M, W) x (..., N, W) packed -> (..., M, N) int32 exact products over ``k`` bits
    (``op`` XOR: both signed; AND: ``a`` in {0, 1}, ``b`` signed). Leading dims must match.
    With ``scale`` (one value or N) the result is float32 ``products * scale + bias``, made
    in the kernel's pass and rounded as that torch expression is."""
    lead = a.shape[:-2]
    a3, b3 = a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])
    if _on_meta(a, b):
        out = torch.ops.encoder_binary.binary_matmul(a3, b3, k, op, scale is not None)
    else:
        empty = torch.empty(0)
        out = extension().binary_matmul(a3, b3, k, op, path_number(path),
                                        empty if scale is None else scale.reshape(-1),
                                        empty if bias is None else bias)
    return out.view(*lead, a.size(-2), b.size(-2))


def binary_depthwise(x: torch.Tensor, valid: Optional[torch.Tensor], w: torch.Tensor, k: int,
                     stride: int, t_out: int, unsigned: bool = False,
                     path: Optional[str] = None) -> torch.Tensor:
    """Packed depthwise convolution: rows (R, W) of channel ``r % C`` -> (R, t_out) int32."""
    if _on_meta(x, w):
        return torch.ops.encoder_binary.binary_depthwise(x, w, k, t_out)
    empty = torch.empty(0, dtype=torch.int64)
    return extension().binary_depthwise(x, empty if valid is None else valid, w, k, stride,
                                        t_out, unsigned, path_number(path))


def binary_attention(q: torch.Tensor, k: torch.Tensor, v_t: torch.Tensor, head_dim: int, *,
                     content_scale: float, score_scale: float, probs_alpha: float,
                     out_scale: float, allowed: Optional[torch.Tensor] = None,
                     key_padding: Optional[torch.Tensor] = None,
                     qv: Optional[torch.Tensor] = None, positions: Optional[torch.Tensor] = None,
                     position_scale: float = 0.0, path: Optional[str] = None) -> torch.Tensor:
    """Fused packed attention (``csrc/binary_attention.cpp``), equal to the unfused packed
    path to the bit: (B, H, T, Wd) packed query signs, (B, H, S, Wd) key signs, (B, H, D,
    ceil(S / 64)) signs of V transposed -> (B, H, T, D) float32. ``allowed`` (T, S) and
    ``key_padding`` (B, S, true = padding) mask pairs; ``qv`` (B, H, T, Wd) and
    ``positions`` (H, 2T - 1, Wd) add the relative-position term."""
    batch, heads, time = q.shape[:3]
    empty = torch.empty(0)

    def flat(x):
        return empty if x is None else x.reshape(-1, *x.shape[-2:])

    if _on_meta(q, k, v_t):
        out = torch.ops.encoder_binary.binary_attention(
            flat(q), flat(k), flat(v_t), head_dim, None if qv is None else flat(qv))
        return out.view(batch, heads, time, v_t.size(-2))
    out = extension().binary_attention(
        flat(q), flat(k), flat(v_t), head_dim, content_scale, score_scale,
        empty if allowed is None else allowed, empty if key_padding is None else key_padding,
        heads, flat(qv), empty if positions is None else positions, position_scale,
        probs_alpha, out_scale, path_number(path))
    return out.view(batch, heads, time, v_t.size(-2))


# Shapes without arithmetic: on meta tensors the packed layers run as torch operators with
# only a shape function, so an analysis that traces dispatched ops (the kernel estimate)
# sees each packed product, packing, depthwise convolution and fused attention core with
# its shape. Real tensors call the extension directly (no dispatcher overhead per call).
def _on_meta(*tensors) -> bool:
    return any(t is not None and t.device.type == "meta" for t in tensors)


@torch.library.custom_op("encoder_binary::pack_rows", mutates_args=(), device_types="meta")
def _pack_rows_shape(rows: torch.Tensor, offset: Optional[torch.Tensor], alpha: float,
                     unsigned: bool) -> torch.Tensor:
    return rows.new_empty((rows.size(0), -(-rows.size(1) // WORD_BITS)),
                          dtype=torch.int64)


@torch.library.custom_op("encoder_binary::binary_matmul", mutates_args=(), device_types="meta")
def _binary_matmul_shape(a: torch.Tensor, b: torch.Tensor, k: int, op: int,
                         scaled: bool) -> torch.Tensor:
    dtype = torch.float32 if scaled else torch.int32
    return a.new_empty((a.size(0), a.size(1), b.size(1)), dtype=dtype)


@torch.library.custom_op("encoder_binary::binary_depthwise", mutates_args=(),
                         device_types="meta")
def _binary_depthwise_shape(x: torch.Tensor, w: torch.Tensor, k: int,
                            t_out: int) -> torch.Tensor:
    return x.new_empty((x.size(0), t_out), dtype=torch.int32)


@torch.library.custom_op("encoder_binary::binary_attention", mutates_args=(),
                         device_types="meta")
def _binary_attention_shape(q: torch.Tensor, k: torch.Tensor, v_t: torch.Tensor, head_dim: int,
                            qv: Optional[torch.Tensor]) -> torch.Tensor:
    return q.new_empty((q.size(0), q.size(1), v_t.size(1)), dtype=torch.float32)
