"""The kernel-aware estimate: each kernel of a forward pass timed by what a calibration
measured for kernels of its kind and shape (a catalog's ``kernels`` section, written by
``profile-encoder calibrate``; see :mod:`profiler.kernel_calibration`).

The roofline (:mod:`profiler.estimator`) prices every multiply-accumulate at the peak of a
large square matrix multiply and every other byte at the copy bandwidth: a lower bound. A
CPU runs a skinny matrix multiply, a depthwise convolution, a softmax or a GELU well below
both. Here each kernel gets its own time:

- matrix multiplies (``linear``, ``matmul``, ``mm``, ``bmm``, ``addmm``, ``baddbmm``) at the
  fp32 peak times an efficiency of their shape, ``eff(M, N, K) = m(M) n(N) k(K) / e^2``: the
  calibration sweeps each dimension with the other two at a reference size (where the
  efficiency is ``e``), and values between its sizes are interpolated in log size;
- fused attention (``scaled_dot_product_attention``): its two products as matrix multiplies
  and its scores as a softmax at the rate of a cached tensor (the kernel works in tiles and
  never writes them);
- dense convolutions as the matrix multiply of their unfolded input (M = output positions,
  N = output channels, K = input channels x kernel per group) times a measured factor;
  depthwise ones at a measured time per MAC;
- every other kernel at a measured time per element of its class (plain arithmetic,
  transcendental, reduction, softmax, normalization, copy), interpolated in log size
  between a small (cached) and a large tensor; matrix multiplies and convolutions also pay
  for writing their result (``output``: allocation and first touch of a fresh tensor);
- views (``view``, ``transpose``, a ``reshape`` that copies nothing, eval-mode ``dropout``)
  take no kernel time;
- the packed W1A1 kernels of a deployed model (``models.deploy``; traced as the shape-only
  operators ``encoder_binary::*`` it runs on meta tensors): a packed product at the
  calibrated ``int1`` peak times an efficiency of its shape (the same separable model as
  the float one, measured on the packed kernel), packing per element, the packed depthwise
  convolution per MAC; the fused packed attention core (``binary_attention``) per score
  (query-key pair) at the time calibrated on the fused kernel itself at head widths 64 and
  128, linear in the words a score costs (a query's words for Q K^T, V's columns / 64 for
  P V), plus the relative positions' (Q + v) P^T as a packed product (its scores stay in
  cache: pricing them as separate products, softmax and packing overestimated the kernel
  1.6x);

plus a fixed time per op called as a function (``op_us``) for every op the analyzer counts
and the time a module call adds (``module_overhead_us``) for every module call (the
roofline's one ``op_overhead_us`` holds both, averaged over the ops of tiny layers).

The kernels are those PyTorch dispatches under ``inference_mode``
(composite ops such as ``linear`` and ``layer_norm`` unexpanded, as one kernel), traced on
meta tensors: no memory, no arithmetic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .catalog import ATTENTION_HEAD_DIMS, Catalog, CatalogError
from .op_arguments import op_tensors

_MATMULS = {"linear", "matmul", "mm", "bmm", "addmm", "baddbmm"}
_VIEWS = {"view", "transpose", "unsqueeze", "squeeze", "slice", "select", "detach", "as_strided",
          "expand", "permute", "t", "alias", "dropout", "_unsafe_view", "unflatten", "flatten",
          "narrow", "split", "chunk", "unbind", "contiguous", "reshape", "empty", "empty_like",
          "lift_fresh", "_reshape_alias"}
# models.deploy's packed kernels, by the names of their shape-only operators (an op outside
# aten is traced as NAMESPACE::name, so another library's `linear` is not aten's)
PACKED_NAMESPACE = "encoder_binary"
_PACKED = {f"{PACKED_NAMESPACE}::{name}" for name in
           ("pack_rows", "binary_matmul", "binary_depthwise", "binary_attention")}
_CLASS_OF = {
    **dict.fromkeys(("gelu", "silu", "glu", "sigmoid", "tanh", "exp", "erf", "log", "rsqrt",
                     "sqrt", "pow", "log_softmax", "softplus", "elu", "sin", "cos"),
                    "transcendental"),
    **dict.fromkeys(("sum", "mean", "amax", "amin", "max", "min", "var", "std", "norm",
                     "_weight_norm", "argmax", "cumsum"), "reduction"),
    **dict.fromkeys(("softmax", "_softmax"), "softmax"),
    **dict.fromkeys(("layer_norm", "group_norm", "batch_norm", "native_layer_norm",
                     "instance_norm", "rms_norm"), "norm"),
    **dict.fromkeys(("pad", "constant_pad_nd", "cat", "clone", "copy_", "_to_copy",
                     "repeat_interleave", "repeat", "index", "gather", "index_select",
                     "flip", "roll", "tril", "triu", "stack"), "copy"),
}


@dataclass(frozen=True)
class Kernel:
    """One kernel of the pass: ``kind`` is ``matmul`` or ``packed-matmul`` (``dims`` =
    batch, M, N, K; K in bits for a packed one), ``conv`` / ``depthwise`` /
    ``packed-depthwise`` (``dims`` = groups, M, N, K per group; MACs for depthwise ones),
    ``view``, or an element class (``dims`` = elements; ``packing`` among them)."""
    op: str
    kind: str
    dims: tuple[int, ...]


def _numel(shape) -> int:
    return math.prod(shape)


def _matmul_kernels(op: str, name: str, args: Sequence, out) -> list[Kernel]:
    a, b = (args[1], args[2]) if name in ("addmm", "baddbmm") else (args[0], args[1])
    if name == "linear":
        batch, m, n, k = 1, _numel(a.shape[:-1]), b.shape[0], a.shape[-1]
    elif b.dim() <= 2:  # mm, addmm, and matmul by a matrix or vector: one product
        batch, m, k = 1, _numel(a.shape[:-1]), a.shape[-1]
        n = b.shape[-1] if b.dim() == 2 else 1
    else:  # bmm, baddbmm, batched matmul
        batch, k, n = _numel(out.shape[:-2]), b.shape[-2], b.shape[-1]
        m = a.shape[-2] if a.dim() > 1 else 1
    # baddbmm's addend initializes the result, which the output's first touch prices
    return [Kernel(op, "matmul", (batch, max(m, 1), n, k)), Kernel(op, "output", (out.numel(),))]


def _viewable(tensor: torch.Tensor, shape) -> bool:
    """Whether ``reshape`` to ``shape`` is a view (it copies otherwise). Under
    ``inference_mode`` its result never says so itself (``_is_view`` is False for every
    inference tensor), so ask whether ``view`` accepts the input's strides."""
    try:
        tensor.view(shape)
    except RuntimeError:
        return False
    return True


def _packed_kernels(op: str, name: str, args: Sequence, out) -> list[Kernel]:
    name = name.rpartition("::")[2]
    if name == "pack_rows":  # (rows, K) values in, their bits out
        return [Kernel(op, "packing", (args[0].numel(),))]
    written = Kernel(op, "output", (out.numel(),))
    if name == "binary_matmul":  # (B, M, W) x (B, N, W) over K bits
        a, b, k = args[0], args[1], args[2]
        return [Kernel(op, "packed-matmul", (a.size(0), a.size(1), b.size(1), k)), written]
    if name == "binary_attention":  # q (BH, T, W), k (BH, S, W), V^T (BH, D, W'), d bits
        q, key, v_t, d, qv = args[:5]
        batch, rows, keys, dim = q.size(0), q.size(1), key.size(1), v_t.size(1)
        core = [Kernel(op, "packed-attention", (batch * rows * keys, d, dim))]
        if qv is not None:
            core.append(Kernel(op, "packed-matmul", (batch, rows, keys, d)))
        return core + [written]
    if name == "binary_depthwise":
        return [Kernel(op, "packed-depthwise", (out.numel() * args[2],)), written]
    raise ValueError(f"no kernel rule for the packed op {name}")


def kernels_of(op: str, args: Sequence, kwargs: Mapping, out) -> list[Kernel]:
    """The kernels one dispatched op runs (its name without overload, and without its
    namespace for aten's: ``mm``, ``encoder_binary::pack_rows``)."""
    name = op
    outs = op_tensors((out,))
    if name in _MATMULS:
        return _matmul_kernels(op, name, args, outs[0])
    if name in _PACKED:
        return _packed_kernels(op, name, args, outs[0])
    if name == "scaled_dot_product_attention":
        q, key = args[0], args[1]
        batch, tq, tk, d = _numel(q.shape[:-2]), q.shape[-2], key.shape[-2], q.shape[-1]
        # the scores stay in cache, in tiles: their softmax at the cached rate, no output
        return [Kernel(op, "matmul", (batch, tq, tk, d)), Kernel(op, "matmul", (batch, tq, d, tk)),
                Kernel(op, "cached-softmax", (batch * tq * tk,)),
                Kernel(op, "output", (outs[0].numel(),))]
    if name in ("conv1d", "conv2d", "convolution"):
        x, w = args[0], args[1]
        where = 8 if name == "convolution" else 6
        groups = args[where] if len(args) > where else kwargs.get("groups", 1)
        positions = _numel(outs[0].shape) // outs[0].shape[1]
        per_group_k = w.shape[1] * _numel(w.shape[2:])
        written = Kernel(op, "output", (outs[0].numel(),))
        if groups > 1 and groups == x.shape[1] and w.shape[1] == 1:
            return [Kernel(op, "depthwise", (outs[0].numel() * per_group_k,)), written]
        return [Kernel(op, "conv", (groups, positions, w.shape[0] // groups, per_group_k)),
                written]
    if name in _VIEWS:
        if name == "reshape" and outs and not _viewable(args[0], outs[0].shape):
            return [Kernel(op, "copy", (outs[0].numel(),))]
        if name == "contiguous" and outs and outs[0] is not args[0]:
            return [Kernel(op, "copy", (outs[0].numel(),))]
        return [Kernel(op, "view", ())]
    kind = _CLASS_OF.get(name, "plain")
    if kind in ("reduction", "norm"):
        elements = max((t.numel() for t in op_tensors(args)), default=0)
    else:
        elements = max((t.numel() for t in outs), default=0)
    return [Kernel(op, kind, (elements,))]


class _Tracer(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.kernels: list[Kernel] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        if func.namespace != "aten":
            name = f"{func.namespace}::{name}"
        self.kernels.extend(kernels_of(name, args, kwargs, out))
        return out


def trace_kernels(model: torch.nn.Module, *inputs) -> list[Kernel]:
    """The kernels of one forward pass of ``model`` (meta tensors recommended)."""
    tracer = _Tracer()
    with torch.inference_mode(), tracer:
        model(*inputs)
    return tracer.kernels


def _interpolate(points: Sequence[float], values: Sequence[float], x: float) -> float:
    """``values`` at ``x``, linear in log ``x`` between ``points``, constant beyond them."""
    if x <= points[0]:
        return values[0]
    if x >= points[-1]:
        return values[-1]
    for (x0, v0), (x1, v1) in zip(zip(points, values), zip(points[1:], values[1:])):
        if x <= x1:
            w = (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return v0 + w * (v1 - v0)
    return values[-1]


def matmul_efficiency(kernels: Mapping, m: int, n: int, k: int, key: str = "matmul") -> float:
    """Fraction of the peak a matrix multiply of M x K by K x N reaches (``kernels[key]``:
    the fp32 one, or the packed one's within the ``packed`` section)."""
    table = kernels[key]
    sizes, reference = table["sizes"], table["reference_efficiency"]
    value = (_interpolate(sizes, table["m"], m) * _interpolate(sizes, table["n"], n)
             * _interpolate(sizes, table["k"], k) / reference ** 2)
    return max(value, 1e-4)


def kernel_seconds(kernel: Kernel, catalog: Catalog) -> float:
    table = catalog.kernels
    peak = catalog.peak("fp32")
    if kernel.kind == "view":
        return 0.0
    if kernel.kind in ("matmul", "conv"):
        batch, m, n, k = kernel.dims
        efficiency = matmul_efficiency(table, m, n, k)
        if kernel.kind == "conv":
            efficiency *= table["conv1d_factor"]
        return 2 * batch * m * n * k / (peak * efficiency)
    if kernel.kind == "depthwise":
        return kernel.dims[0] * table["depthwise_conv1d_ns_per_mac"] * 1e-9
    if kernel.kind.startswith("packed") or kernel.kind == "packing":
        return _packed_seconds(kernel, catalog)
    per_element = table["per_element_ns"]
    if kernel.kind == "cached-softmax":     # a tensor in cache: the smallest size's rate
        return kernel.dims[0] * per_element["softmax"][0] * 1e-9
    return kernel.dims[0] * _interpolate(per_element["elements"], per_element[kernel.kind],
                                         max(kernel.dims[0], 1)) * 1e-9


def _packed_seconds(kernel: Kernel, catalog: Catalog) -> float:
    packed = catalog.kernels.get("packed")
    if packed is None or "int1" not in catalog.peaks_tera:
        raise CatalogError(f"{catalog.path or catalog.key}: a deployed model's kernel estimate "
                           "needs the int1 peak and the packed kernels' figures: run "
                           "`profile-encoder calibrate` on a machine that builds them")
    if kernel.kind == "packed-matmul":
        batch, m, n, k = kernel.dims
        efficiency = matmul_efficiency(packed, m, n, k, "matmul")
        return 2 * batch * m * n * k / (catalog.peak("int1") * efficiency)
    if kernel.kind == "packed-depthwise":
        return kernel.dims[0] * packed["depthwise_ns_per_mac"] * 1e-9
    if kernel.kind == "packed-attention":
        scores, head_dim, value_dim = kernel.dims
        return scores * attention_ns_per_score(packed, head_dim, value_dim) * 1e-9
    return kernel.dims[0] * _interpolate(packed["elements"], packed["packing_ns"],
                                         max(kernel.dims[0], 1)) * 1e-9


def score_words(head_dim: int, value_dim: int) -> float:
    """64-bit words a fused attention score costs: the query's for Q K^T, and V's columns
    over 64 for P V (each word of probability bits serves 64 keys)."""
    return math.ceil(head_dim / 64) + value_dim / 64


def attention_ns_per_score(packed: Mapping, head_dim: int, value_dim: int) -> float:
    """Nanoseconds per score of the fused attention core: the two calibrated points
    (:data:`ATTENTION_HEAD_DIMS`) joined by a line in :func:`score_words`, at least a
    quarter of the narrower one's."""
    (d0, d1), (t0, t1) = ATTENTION_HEAD_DIMS, packed["attention_ns_per_score"]
    w0, w1 = score_words(d0, d0), score_words(d1, d1)
    value = t0 + (t1 - t0) * (score_words(head_dim, value_dim) - w0) / (w1 - w0)
    return max(value, 0.25 * t0)


def kernel_time(kernels: Sequence[Kernel], catalog: Catalog, op_calls: int,
                module_calls: int = 0) -> float:
    """Seconds of the pass: every kernel's time plus the fixed time per op for ``op_calls``
    and per module call for ``module_calls``."""
    if catalog.kernels is None:
        raise CatalogError(f"{catalog.path or catalog.key}: the kernel estimate needs a "
                           "catalog with a kernels section: run `profile-encoder calibrate`")
    seconds = sum(kernel_seconds(k, catalog) for k in kernels)
    return (seconds + op_calls * catalog.kernels["op_us"] * 1e-6
            + module_calls * catalog.kernels["module_overhead_us"] * 1e-6)


def model_kernel_time(model: torch.nn.Module, *inputs, catalog: Catalog) -> float:
    """The kernel estimate of one forward pass of any model, on meta tensors: its kernels
    traced, and its op and module calls counted by the analyzer (plus the packed kernels
    of a deployed model, each a call of its own)."""
    from .analyzer import profile
    from .estimator import module_calls, op_calls

    kernels = trace_kernels(model, *inputs)
    counted = profile(model, inputs[0] if len(inputs) == 1 else inputs)
    # a call each: pack_rows is one packing kernel, every other packed op writes one output
    packed_calls = sum(1 for k in kernels if k.op in _PACKED
                       and (k.kind == "output" or k.op.endswith("::pack_rows")))
    return kernel_time(kernels, catalog, op_calls(counted) + packed_calls,
                       module_calls(counted))
