"""Our counts beside DeepSpeed's flops profiler, fvcore, ptflops, FlopCounterMode, calflops
and thop.

Every tool runs the same model on the same real CPU inputs, in the model's own train/eval
mode, without gradients (how inference is profiled). The quantity compared is MACs, the one
all six report: DeepSpeed's ``macs``; fvcore's matrix-product and convolution operators
(fvcore counts one "flop" per MAC and adds norm work to its total, which is left out here);
ptflops' MACs times the batch size (ptflops reports per sample); FlopCounterMode's FLOPs / 2;
calflops' ``macs`` (DeepSpeed's profiler, adapted); thop's total ("MACs", the whole batch).
DeepSpeed's and calflops' FLOPs are shown beside ours as well.

Each disagreement above the tolerance is flagged with the causes known for that tool that
this model triggers, found from what ran in our own profile (fused kernels, functions such
as ``einsum`` or ``@``, module types). A disagreement with no known cause is flagged as
unexplained.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import textwrap
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .analyzer import profile

PEERS = ("deepspeed", "fvcore", "ptflops", "flop_counter", "calflops", "thop")
LINE_WIDTH = 100  # of the cross-check table, when the verdicts can wrap that far
VERDICT_MIN_WIDTH = 40


@dataclass(frozen=True)
class Evidence:
    """What ran in our profile, for deciding which known causes apply."""

    ops: frozenset[str]
    functions: frozenset[str]
    module_types: frozenset[type]
    training: bool
    foldable_macs: int = 0

    def has_module(self, *types: type) -> bool:
        return any(issubclass(t, types) for t in self.module_types)


@dataclass(frozen=True)
class Cause:
    text: str
    direction: int  # -1: the peer undercounts, +1: it overcounts
    applies: Callable[[Evidence], bool]
    # MACs the cause accounts for, where it can be computed from our own profile
    amount: Optional[Callable[[Evidence], int]] = None


# Every peer counts what runs, including products of weights with weights (projecting a
# positional table, say), which our MACs leave out as precomputable.
_FOLDABLE = Cause("counts products of weights with weights, which we report apart as "
                  "precomputable (foldable_macs)", +1, lambda e: e.foldable_macs > 0,
                  lambda e: e.foldable_macs)


_FUSED_MHA = ("aten._native_multi_head_attention", "aten._transformer_encoder_layer_fwd")
_RNNS = (nn.RNNBase, nn.RNNCellBase)

# calflops is DeepSpeed's flops profiler adapted (it patches the same functionals and hooks
# the same modules), so it shares these three ways of going wrong.
_MHA_FAST_PATH = Cause("the fused nn.MultiheadAttention fast path (eval, no grad) calls "
                       "torch._native_multi_head_attention directly, bypassing the patched "
                       "functionals", -1,
                       lambda e: not e.training and e.has_module(nn.MultiheadAttention))
_EINSUM_NO_MACS = Cause("torch.einsum is counted in FLOPs but with 0 MACs", -1,
                        lambda e: "einsum" in e.functions)
_RNN_FLOPS_ONLY = Cause("RNN modules are counted in FLOPs by a module hook, with 0 MACs", -1,
                        lambda e: e.has_module(*_RNNS))
# torch.conv1d (F.conv1d) and the other C++ functions arrive as _VariableFunctionsClass.<name>
_TORCH = "_VariableFunctionsClass."
_FUNCTIONAL_CONVS = {_TORCH + name for name in ("conv1d", "conv2d", "conv3d")}
# Products thop has neither a module rule nor a function hook for.
_THOP_UNHOOKED = _FUNCTIONAL_CONVS | {
    prefix + name for prefix in (_TORCH, "TensorBase.")
    for name in ("mm", "addmm", "baddbmm", "addbmm")} | {
    _TORCH + name for name in ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")}

KNOWN_CAUSES: dict[str, list[Cause]] = {
    "flop_counter": [
        _FOLDABLE,
        Cause("no formula for the fused nn.MultiheadAttention / nn.TransformerEncoderLayer "
              "fast-path kernels (eval, no grad): their work counts as 0", -1,
              lambda e: any(op in e.ops for op in _FUSED_MHA)),
        Cause("scaled_dot_product_attention on CPU runs "
              "_scaled_dot_product_flash_attention_for_cpu, which has no formula", -1,
              lambda e: "aten._scaled_dot_product_flash_attention_for_cpu" in e.ops),
        Cause("LSTMs on CPU run oneDNN kernels (mkldnn_rnn_layer), which have no formula", -1,
              lambda e: e.has_module(nn.LSTM)),
    ],
    "deepspeed": [_FOLDABLE, _MHA_FAST_PATH, _EINSUM_NO_MACS, _RNN_FLOPS_ONLY],
    "fvcore": [
        _FOLDABLE,
        # fvcore names the operators it skipped itself; see CrossCheckRow.peer_notes.
        Cause("operators without an fvcore handle are skipped (listed in the notes)", -1,
              lambda e: True),
    ],
    "ptflops": [
        _FOLDABLE,
        Cause("functional calls outside the functions and modules it patches are missed "
              "(the @ operator, einsum, scaled_dot_product_attention, F.conv*)", -1,
              lambda e: bool(e.functions & ({"TensorBase.matmul", "einsum",
                                             "scaled_dot_product_attention"}
                                            | _FUNCTIONAL_CONVS))),
        Cause("the nn.TransformerEncoderLayer fast path (eval, no grad) skips the Linear "
              "submodules its hooks count", -1,
              lambda e: "aten._transformer_encoder_layer_fwd" in e.ops),
        Cause("bias additions, activations and norms are added to its MAC count", +1,
              lambda e: True),
    ],
    "calflops": [
        _FOLDABLE, _MHA_FAST_PATH, _EINSUM_NO_MACS, _RNN_FLOPS_ONLY,
        Cause("the @ operator and scaled_dot_product_attention are not among the functions "
              "it patches: their products are missed", -1,
              lambda e: bool(e.functions & {"TensorBase.matmul",
                                            "scaled_dot_product_attention"})),
    ],
    "thop": [
        _FOLDABLE,
        Cause("functional convolutions and the mm/addmm/baddbmm family have neither a module "
              "rule nor a function hook: their products are missed", -1,
              lambda e: bool(e.functions & _THOP_UNHOOKED)),
        Cause("einsum of three or more operands counts 0", -1,
              lambda e: "einsum" in e.functions),
        Cause("norms, softmax, pooling, upsampling, recurrent gates and convolution biases "
              "are added to its MAC count", +1, lambda e: True),
    ],
}


@dataclass
class CrossCheckRow:
    tool: str
    macs: Optional[int]
    flops: Optional[int] = None
    seconds: float = 0.0
    error: Optional[str] = None
    diff: Optional[float] = None  # (peer - ours) / ours
    causes: list[str] = field(default_factory=list)
    peer_notes: list[str] = field(default_factory=list)
    flagged: bool = False
    explained: bool = True


@dataclass
class CrossCheck:
    ours_macs: int
    ours_flops: int
    tolerance: float
    rows: list[CrossCheckRow]

    def row(self, tool: str) -> CrossCheckRow:
        return next(r for r in self.rows if r.tool == tool)

    def __str__(self) -> str:
        return format_crosscheck(self)


def crosscheck(model: nn.Module, inputs: Any, *, kwargs: Optional[Mapping[str, Any]] = None,
               peers: tuple[str, ...] = PEERS, tolerance: float = 0.01) -> CrossCheck:
    """Run each peer profiler and ours on ``model(*inputs, **kwargs)`` (real CPU tensors)
    and compare MACs. A peer that is not installed or fails gets a row with its error."""
    unknown = set(peers) - set(PEERS)
    if unknown:
        raise ValueError(f"unknown peer(s) {sorted(unknown)}; known: {', '.join(PEERS)}")
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    kwargs = dict(kwargs or {})
    if any(isinstance(a, torch.Tensor) and a.is_meta for a in args) or any(
            p.is_meta for p in model.parameters()):
        raise ValueError("crosscheck needs real tensors: the peers run the model")

    ours = profile(model, args, device="cpu", kwargs=kwargs)
    # A torch-function mode makes PyTorch leave its fused fast paths, so the functions the
    # model calls are read in a second run; the evidence is what either run saw.
    functions = _FunctionsSeen()
    with functions:
        traced = profile(model, args, device="cpu", kwargs=kwargs)
    evidence = Evidence(
        ops=frozenset(ours.by_operator) | frozenset(traced.by_operator),
        functions=frozenset(functions.names),
        module_types=frozenset(type(m) for m in model.modules()), training=model.training,
        foldable_macs=ours.totals["foldable_macs"],
    )
    macs, flops = ours.totals["macs"], ours.totals["flops"]
    rows = []
    for tool in peers:
        row = _run_peer(tool, model, args, kwargs)
        if row.macs is not None and macs:
            row.diff = (row.macs - macs) / macs
            row.flagged = abs(row.diff) > tolerance
            if row.flagged:
                row.causes, row.explained = _explain(tool, row.macs, macs, evidence, tolerance)
        rows.append(row)
    return CrossCheck(macs, flops, tolerance, rows)


def _explain(tool: str, peer: int, ours: int, evidence: Evidence,
             tolerance: float) -> tuple[list[str], bool]:
    """The known causes that apply, and whether they account for the difference: the
    quantified ones exactly (within the tolerance), the rest by the sign of what remains."""
    applying = [c for c in KNOWN_CAUSES.get(tool, []) if c.applies(evidence)]
    quantified = [c for c in applying if c.amount is not None]
    expected = ours + sum(c.direction * c.amount(evidence) for c in quantified)
    residual = (peer - expected) / ours
    if abs(residual) <= tolerance:
        return [c.text for c in quantified], True
    sign = 1 if residual > 0 else -1
    named = [c.text for c in applying if c.amount is None and c.direction == sign]
    return [c.text for c in quantified] + named, bool(named)


class _FunctionsSeen(TorchFunctionMode):
    """Names of the torch functions the model's own code called (the outermost ones)."""

    def __init__(self):
        super().__init__()
        self.names: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        # Qualified names tell a Tensor method (`@` arrives as TensorBase.matmul) from
        # the torch function of the same name (torch.matmul).
        self.names.add(getattr(func, "__qualname__", None) or getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def _run_peer(tool: str, model: nn.Module, args: tuple, kwargs: dict) -> CrossCheckRow:
    runner = PEER_COUNTS[tool]
    # Peers add hooks, patch functions or (ptflops) switch the model to eval: give each its
    # own copy so the user's model leaves exactly as it came.
    peer_model = copy.deepcopy(model)
    start = time.perf_counter()
    try:
        with _quiet(), torch.no_grad():
            row = runner(peer_model, args, kwargs)
    except ImportError as error:
        row = CrossCheckRow(tool, None, error=f"not installed ({error.name or error})")
    except Exception as error:  # a peer's failure is a result to show, not ours to raise
        row = CrossCheckRow(tool, None, error=f"{type(error).__name__}: {str(error)[:200]}")
    row.seconds = time.perf_counter() - start
    return row


@contextlib.contextmanager
def _quiet():
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)


def _deepspeed(model, args, kwargs) -> CrossCheckRow:
    from deepspeed.profiling.flops_profiler import get_model_profile

    flops, macs, _ = get_model_profile(model, args=list(args), kwargs=kwargs,
                                       print_profile=False, detailed=False, warm_up=0,
                                       as_string=False)
    return CrossCheckRow("deepspeed", int(macs), flops=int(flops))


# fvcore operators that are matrix products or convolutions (one fvcore "flop" = one MAC).
_FVCORE_MAC_OPS = {"linear", "matmul", "mm", "bmm", "addmm", "einsum", "conv", "baddbmm",
                   "_convolution", "upsample_nearest2d", "upsample_bilinear2d"}


def _fvcore(model, args, kwargs) -> CrossCheckRow:
    from fvcore.nn import FlopCountAnalysis

    if kwargs:
        raise ValueError("fvcore traces positional inputs only")
    analysis = FlopCountAnalysis(model, args)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    by_op = analysis.by_operator()
    macs = sum(v for k, v in by_op.items() if k in _FVCORE_MAC_OPS)
    skipped = sorted(analysis.unsupported_ops())
    notes = [f"skipped: {', '.join(skipped)}"] if skipped else []
    return CrossCheckRow("fvcore", int(macs), peer_notes=notes)


def _ptflops(model, args, kwargs) -> CrossCheckRow:
    from ptflops import get_model_complexity_info

    first = args[0]
    if not isinstance(first, torch.Tensor) or first.dim() == 0:
        raise ValueError("ptflops needs a batched tensor as the first input")
    if len(args) == 1 and not kwargs:
        # One positional tensor: ptflops divides by its batch size (MACs per sample).
        runnable, construct, scale = model, (lambda _res: first), first.shape[0]
        notes = [f"per-sample MACs x batch {scale}"]
    else:
        # Several inputs reach ptflops as keyword arguments, and it then counts batch 1.
        runnable, construct, scale = _Positional(model), (
            lambda _res: {"positional": args, **kwargs}), 1
        notes = []
    macs, _ = get_model_complexity_info(runnable, tuple(first.shape[1:]), as_strings=False,
                                        print_per_layer_stat=False,
                                        input_constructor=construct)
    if macs is None:
        raise RuntimeError("ptflops failed on this model")
    return CrossCheckRow("ptflops", int(macs) * scale, peer_notes=notes)


class _Positional(nn.Module):
    """ptflops passes a dict as keyword arguments; this unpacks it into the real call."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, positional, **kwargs):
        return self.inner(*positional, **kwargs)


def _flop_counter(model, args, kwargs) -> CrossCheckRow:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(*args, **kwargs)
    total = counter.get_total_flops()
    return CrossCheckRow("flop_counter", total // 2, flops=total)


def _calflops(model, args, kwargs) -> CrossCheckRow:
    from calflops import calculate_flops

    if not any(True for _ in model.parameters()):
        # it reads the model's device from its first parameter
        raise ValueError("calflops needs a model with parameters")
    flops, macs, _ = calculate_flops(model=model, args=list(args), kwargs=kwargs,
                                     print_results=False, print_detailed=False,
                                     output_as_string=False)
    return CrossCheckRow("calflops", int(macs), flops=int(flops))


def _thop(model, args, kwargs) -> CrossCheckRow:
    from thop import profile as thop_profile

    if kwargs:
        raise ValueError("thop passes positional inputs only")
    total, _ = thop_profile(model, inputs=args, verbose=False)
    return CrossCheckRow("thop", int(total))


# Each peer's count of (model, args, kwargs), as --crosscheck runs it (benchmarks/
# bench_profilers.py times the same calls).
PEER_COUNTS: Mapping[str, Callable[[nn.Module, tuple, dict], CrossCheckRow]] = {
    "deepspeed": _deepspeed, "fvcore": _fvcore, "ptflops": _ptflops,
    "flop_counter": _flop_counter, "calflops": _calflops, "thop": _thop}
assert tuple(PEER_COUNTS) == PEERS


def format_crosscheck(check: CrossCheck) -> str:
    from tabulate import tabulate

    rows = [["ours", f"{check.ours_macs:,}", "", f"{check.ours_flops:,}", "", ""]]
    for r in check.rows:
        if r.error:
            rows.append([r.tool, "-", "", "-", f"{r.seconds:.1f}s", r.error])
            continue
        status = "agrees" if not r.flagged else (
            "DIFFERS: " + "; ".join(r.causes) if r.explained else "DIFFERS, unexplained")
        if r.peer_notes:
            status += " [" + "; ".join(r.peer_notes) + "]"
        rows.append([r.tool, f"{r.macs:,}", f"{r.diff:+.2%}",
                     f"{r.flops:,}" if r.flops is not None else "-", f"{r.seconds:.1f}s",
                     status])
    headers = ["tool", "MACs", "vs ours", "FLOPs", "time", "verdict"]
    # The verdict (causes, peer notes) can run to hundreds of characters: wrap it so that
    # a row fits a terminal line beside the other columns.
    others = tabulate([r[:-1] for r in rows], headers=headers[:-1], tablefmt="simple",
                      disable_numparse=True)
    width = max(VERDICT_MIN_WIDTH, LINE_WIDTH - len(others.splitlines()[1]) - 2)
    for row in rows:
        row[-1] = "\n".join(textwrap.wrap(row[-1], width, break_on_hyphens=False)) or row[-1]
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)
