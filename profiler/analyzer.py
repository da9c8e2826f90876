"""Counting every ATen op a model runs, attributed to the innermost module that ran it.

The analyzer runs the model once under a ``TorchDispatchMode``: every op reaches it after
PyTorch's Python-level decompositions, so functional calls, ``@``, ``einsum``, grouped
convolutions and the fused attention kernels are all seen. Forward hooks on the model's
own modules keep a stack of which module is running. Nothing global is patched; the hooks
are removed, the model's parameters and buffers are never written, and attributes a forward
sets (a cache filled on first use) are put back as they were.

Device independence: the counts are those of the computation as PyTorch defines it, the
same on meta, CPU and CUDA. Where PyTorch's kernels take device-specific routes, one route
is counted everywhere: recurrent layers as its Python reference (input projection over the
whole sequence at once), a nested batch (``nn.TransformerEncoder``'s fast path for padded
batches) as its padded batch, and 0-dim CPU tensors beside meta tensors as scalars.

Constant tracking: parameters, buffers and tensors made from shapes alone are *constants*,
and so is every result computed from constants only. A MAC between a constant and an
activation is a weight x activation product (``W..A..``), one between two activations is
an activation x activation product (``A..A..``), and work on constants alone (weight
binarization, positional tables) is what a deployed model would precompute: it is reported
apart as ``foldable`` and left out of the inference totals.
"""
from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import torch
from torch import nn
from torch._dispatch.python import enable_python_dispatcher as _enable_python_dispatcher
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map
from torch.utils.weak import WeakIdKeyDictionary

from . import bits as bitspec
from . import formulas
from .fastmeta import fast_output
from .formulas import Cost
from .result import ModuleTally, OperatorTally, Profile

__all__ = ["profile", "ProfileError"]


class ProfileError(RuntimeError):
    """The model could not be run for profiling (the message says why and what to try)."""


def profile(
    model: nn.Module,
    inputs: Any,
    *,
    device: str | torch.device = "meta",
    kwargs: Optional[Mapping[str, Any]] = None,
    formulas: Optional[Mapping[Any, Callable]] = None,
) -> Profile:
    """Profile one forward pass of ``model`` on ``inputs``.

    ``inputs`` is a tensor or a tuple of positional arguments; ``kwargs`` are passed as
    keyword arguments. ``device="meta"`` (the default) runs on meta tensors: no memory is
    allocated for weights or activations and nothing is computed, so any input length or
    model size costs the same fraction of a second; the counts equal a CPU or CUDA run's.
    The model's train/eval mode is respected (profile in ``eval()`` for inference costs).
    ``formulas`` maps ATen ops (``torch.ops.aten.xxx``) to extra or replacement formulas for
    this call (see :mod:`profiler.formulas`).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"profile() needs an nn.Module, got {type(model).__name__}")
    device = torch.device(device)
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    kwargs = dict(kwargs or {})

    modules = dict(model.named_modules())
    names = {id(m): n for n, m in modules.items()}
    params, buffers = _state_on(model, device)
    constants = WeakIdKeyDictionary()
    for tensor in (*params.values(), *buffers.values()):
        constants[tensor] = True
    args, kwargs = tree_map(lambda x: _input_on(x, device), (args, kwargs))

    counter = _OpCounter(modules, constants, dict(formulas or {}))
    counter.meta = device.type == "meta"
    handles = []
    for module in modules.values():
        handles.append(module.register_forward_pre_hook(counter.enter, with_kwargs=True))
        handles.append(
            module.register_forward_hook(counter.leave, with_kwargs=True, always_call=True)
        )
    counter.names = names
    attributes = _plain_attributes_on(model, device)
    try:
        with _rng_kept(device), torch.no_grad(), counter:
            torch.func.functional_call(model, {**params, **buffers}, args, kwargs, strict=False)
    except ProfileError:
        raise
    except Exception as error:  # the model's own error: say where it came from
        raise ProfileError(_explain(model, device, error)) from error
    finally:
        for handle in handles:
            handle.remove()
        counter.unwind()
        _restore(attributes)
    return Profile.from_tallies(model, counter.tallies, counter.operators, counter.unsupported,
                                device=str(device), inputs=_describe(args, kwargs))


@dataclass
class _Frame:
    name: str
    module: nn.Module
    context: Optional[contextlib.ExitStack] = None


class _OpCounter(TorchDispatchMode):
    def __init__(self, modules: Mapping[str, nn.Module], constants: WeakIdKeyDictionary,
                 extra_formulas: dict):
        super().__init__()
        self.modules = modules
        self.names: dict[int, str] = {}
        self.constants = constants
        self.extra = extra_formulas
        self.stack: list[_Frame] = []
        self.tallies: dict[str, ModuleTally] = defaultdict(ModuleTally)
        self.operators: dict[str, OperatorTally] = defaultdict(OperatorTally)
        self.unsupported: Counter = Counter()
        self.paused = 0
        self.fused_label: Optional[str] = None
        self.handlers: dict = {}
        self.meta = False
        # tensor -> bits of its values, when fewer than its dtype's
        self.narrow = WeakIdKeyDictionary()
        self.labels: dict = {}

    # -- module tracking -----------------------------------------------------------------
    def enter(self, module, args, kwargs):
        name = self.names.get(id(module), type(module).__name__)
        frame = _Frame(name, module)
        if isinstance(module, nn.RNNBase):
            # PyTorch's C++ RNN kernels project the whole input sequence at once on CPU
            # (and cuDNN does on CUDA) but step by step on other devices, which reads the
            # input weights once per step: same MACs, different bytes moved. PyTorch's own
            # Python reference (torch._decomp, reached through the thread-local Python
            # dispatcher) projects at once on every device; oneDNN is kept out of it, as
            # its one-layer LSTM kernel would take the CPU run back to a C++ path.
            frame.context = contextlib.ExitStack()
            frame.context.enter_context(_onednn_off())
            frame.context.enter_context(_enable_python_dispatcher())
        self.stack.append(frame)
        self.tallies[name].calls += 1

    def leave(self, module, args, kwargs, output):
        if not self.stack or self.stack[-1].module is not module:
            return  # an exception unwound past frames we never saw leave
        frame = self.stack.pop()
        if frame.context is not None:
            frame.context.close()
        effective = getattr(module, "effective_attention_macs", None)
        if effective is not None:
            self.paused += 1
            try:
                value = effective(*args, **kwargs)
            finally:
                self.paused -= 1
            if not isinstance(value, int) or value < 0:
                raise ProfileError(
                    f"{type(module).__name__}.effective_attention_macs() must return a "
                    f"non-negative int, got {value!r}"
                )
            tally = self.tallies[frame.name]
            tally.declared_effective_aa = (tally.declared_effective_aa or 0) + value

    def unwind(self) -> None:
        """Close what frames left open when an exception skipped their ``leave``."""
        while self.stack:
            frame = self.stack.pop()
            if frame.context is not None:
                frame.context.close()

    def _current(self) -> tuple[str, Optional[nn.Module]]:
        if not self.stack:
            return "", self.modules.get("")
        frame = self.stack[-1]
        suffix = formulas.current_part()
        if suffix:
            candidate = f"{frame.name}.{suffix}" if frame.name else suffix
            if candidate in self.modules:
                return candidate, self.modules[candidate]
        return frame.name, frame.module

    # -- op counting ---------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.paused:
            return func(*args, **kwargs)
        if func in _ANSWERED:
            self._record_call(func)
            return _ANSWERED[func]
        try:
            handler = self.handlers[func]
        except KeyError:
            handler = self.handlers[func] = formulas.lookup(func, self.extra)
        if handler is not None and handler.kind == "decompose":
            return self._decompose(func, handler.fn, args, kwargs)
        if not self.meta and (handler is None or handler.fn is not formulas.no_cost) \
                and _any_nested(args):
            # A nested batch (sequences of unequal lengths, packed) is counted as its padded
            # batch: the cost the same model has on a device that cannot nest.
            return self._decompose(func, func, args, kwargs)
        if handler is None and _has_composite_kernel(func):
            # Composite ops reach a mode unexpanded when called from inside a dispatch
            # handler (the decompositions above): expand them with the same C++ kernel the
            # dispatcher would have used at top level.
            with self:
                return func._op_dk(_COMPOSITE, *args, **kwargs)
        out = fast_output(func, args, kwargs) if self.meta else None
        if out is None:
            if self.meta:
                args, kwargs = self._scalars_on_meta(args, kwargs)
            out = func(*args, **kwargs)
        flat_in = _tensors(args, kwargs.values())
        constants = self.constants
        all_constant = all(t in constants for t in flat_in)
        kind = None
        if handler is None:
            self.unsupported[self._label(func)] += 1
        elif handler.fn is formulas.no_cost:
            self._record_call(func)
            kind = "convert" if func.overloadpacket in _CONVERSIONS else "move"
        else:
            result = handler.fn(*[_shape_of(a) for a in args], out_shape=_shape_of(out),
                                **{k: _shape_of(v) for k, v in kwargs.items()})
            costs = self._record(func, result, args, flat_in, out, all_constant)
            kind = "mac" if any(cost.macs for cost in costs) else "elementwise"
        if self.narrow or kind == "convert":
            self._mark_precision(kind, flat_in, out)
        self._mark_constants(out, all_constant)
        return out

    def _decompose(self, func, reference, args, kwargs):
        """Count the reference computation on meta copies, then run the real kernel."""
        copies: dict[int, torch.Tensor] = {}

        def meta_copy(x):
            if not isinstance(x, torch.Tensor):
                return x
            if id(x) not in copies:  # one copy per tensor: kernels test `query is key`
                copy = x if x.is_meta else _meta_like(x)
                if x in self.constants:
                    self.constants[copy] = True
                if x in self.narrow:
                    self.narrow[copy] = self.narrow[x]
                copies[id(x)] = copy
            return copies[id(x)]

        meta_args, meta_kwargs = tree_map(meta_copy, (args, kwargs))
        outer_label = self.fused_label
        self.fused_label = outer_label or self._label(func)
        try:
            with self:
                reference(*meta_args, **meta_kwargs)
        finally:
            self.fused_label = outer_label
        if outer_label is None:
            self.operators[self._label(func)].calls += 1
        self.paused += 1
        try:
            out = func(*args, **kwargs)
        finally:
            self.paused -= 1
        flat_in = _tensors(args, kwargs.values())
        self._mark_constants(out, all(t in self.constants for t in flat_in))
        return out

    def _scalars_on_meta(self, args, kwargs):
        """0-dim CPU tensors (``torch.tensor(-1e4)``) are scalars that CPU kernels accept
        beside tensors of any device; some meta kernels (``masked_fill``'s fill value)
        reject them, so beside meta tensors they become 0-dim meta tensors."""
        flat = _tensors(args, kwargs.values())
        if all(t.is_meta or t.dim() for t in flat) or not any(t.is_meta for t in flat):
            return args, kwargs

        def on_meta(x):
            if not isinstance(x, torch.Tensor) or x.is_meta or x.dim():
                return x
            copy = torch.empty((), dtype=x.dtype, device="meta")
            if x in self.constants:
                self.constants[copy] = True
            return copy

        return tree_map(on_meta, (args, kwargs))

    def _bits(self, tensor: torch.Tensor) -> int:
        """Bits of information in a tensor's values: its dtype's, or fewer when it was
        widened from a narrower float (PyTorch's math attention computes float16 inputs in
        float32; the values, and a fused kernel's operands, are still 16-bit)."""
        return self.narrow.get(tensor) or bitspec.dtype_bits(tensor.dtype)

    def _mark_precision(self, kind: Optional[str], inputs: list, out) -> None:
        outputs = [t for t in _tensors((out,)) if t.is_floating_point()]
        if not outputs:
            return
        floats = [t for t in inputs if t.is_floating_point()]
        if kind == "convert":
            bits = min((self._bits(t) for t in floats), default=None)
        elif kind in ("move", "mac"):
            bits = max((self._bits(t) for t in floats), default=None)
        elif kind == "elementwise":
            # biases and masks (constants) do not widen what they are added to
            bits = max((self._bits(t) for t in floats if t not in self.constants), default=None)
        else:
            bits = None
        for t in outputs:
            if bits is not None and bits < bitspec.dtype_bits(t.dtype):
                self.narrow[t] = bits
            elif t in self.narrow:
                del self.narrow[t]

    def _label(self, func) -> str:
        try:
            return self.labels[func]
        except KeyError:
            label = self.labels[func] = str(func).removesuffix(".default")
            return label

    def _mark_constants(self, out, constant: bool):
        for t in _tensors((out,)):
            if constant:
                self.constants[t] = True
            elif t in self.constants:
                del self.constants[t]  # an in-place op wrote input-dependent values

    def _record_call(self, func):
        """An op that does no arithmetic: counted as a call only."""
        name, _ = self._current()
        op_label = self.fused_label or self._label(func)
        if self.fused_label is None:
            self.operators[op_label].calls += 1
        self.tallies[name].ops[op_label] += 1

    def _record(self, func, result, args, flat_in, out, all_constant):
        name, module = self._current()
        tally = self.tallies[name]
        op_label = self.fused_label or self._label(func)
        op_tally = self.operators[op_label]
        if self.fused_label is None:
            op_tally.calls += 1
        tally.ops[op_label] += 1
        costs = _as_costs(result)
        self._tally_costs(costs, tally, op_tally, args, flat_in, out, all_constant, module)
        return costs

    def _tally_costs(self, costs, tally, op_tally, args, flat_in, out, all_constant, module):
        declared_w = bitspec.declared_weight_bits(module) if module is not None else None
        declared_a = bitspec.declared_activation_bits(module) if module is not None else None
        first = flat_in[0] if flat_in else None

        moved = 0
        for cost in costs:
            tally_elem = cost.elementwise
            if all_constant and flat_in:
                tally.foldable_flops += tally_elem
            else:
                tally.elementwise_flops += tally_elem
                op_tally.elementwise_flops += tally_elem
            for mac in cost.macs:
                operands = [self._operand(args, i, first, declared_w, declared_a)
                            for i in (mac.lhs, mac.rhs)]
                kind = _pair_kind(operands[0][0], operands[1][0])
                if kind == "cc":
                    tally.foldable_macs += mac.count
                    continue
                if kind == "wa" and not operands[0][0]:
                    operands.reverse()  # weight first
                key = (kind, operands[0][1], operands[1][1])
                tally.macs[key] += mac.count
                op_tally.macs += mac.count
                if kind == "aa":
                    tally.aa_macs[key] += mac.count
                moved += sum(_operand_bytes(args, i, bits) for i, (_, bits) in
                             zip((mac.lhs, mac.rhs), operands))
        if all_constant and flat_in:
            return
        if not any(cost.macs for cost in costs):
            moved += sum(_nbytes(t) for t in flat_in)
        # The primary result only: auxiliary outputs (a norm's saved statistics) differ
        # between backends and are not part of inference.
        outputs = _tensors((out,))
        moved += _nbytes(outputs[0]) if outputs else 0
        tally.bytes_moved += moved

    def _operand(self, args, index, first, declared_w, declared_a) -> tuple[bool, int]:
        """(is_constant, bits) of one MAC operand."""
        tensor = args[index] if index is not None and index < len(args) else None
        packed = bitspec.packed_weight(tensor)
        if packed is not None:  # torch.ao's packed quantized weights: a constant
            return True, declared_w or bitspec.dtype_bits(packed.dtype)
        if not isinstance(tensor, torch.Tensor):
            return False, declared_a or (self._bits(first) if first is not None else 32)
        if tensor in self.constants:
            return True, declared_w or self._bits(tensor)
        return False, declared_a or self._bits(tensor)


# Questions about values the analyzer answers itself, the same on every device.
# nn.TransformerEncoder (eval, a key padding mask, enable_nested_tensor) asks whether the
# mask is left-aligned before packing the batch into a nested tensor that holds only the
# real tokens; meta tensors have no values to answer with. "No" keeps the padded batch on
# every device, so the profile is the cost of the padded batch, as for any other model.
_ANSWERED = {torch.ops.aten._nested_tensor_from_mask_left_aligned.default: False}
_COMPOSITE = torch._C.DispatchKey.CompositeImplicitAutograd
_CONVERSIONS = {torch.ops.aten._to_copy, torch.ops.aten.to, torch.ops.aten._to_copy}


def _has_composite_kernel(func) -> bool:
    return torch._C._dispatch_has_kernel_for_dispatch_key(func.name(), _COMPOSITE)


def _any_nested(args) -> bool:
    return any(t.is_nested for t in _tensors(args))


def _pair_kind(lhs_constant: bool, rhs_constant: bool) -> str:
    if lhs_constant and rhs_constant:
        return "cc"
    if lhs_constant or rhs_constant:
        return "wa"
    return "aa"


def _as_costs(result) -> list[Cost]:
    if result is None:
        return []
    if isinstance(result, int):
        return [Cost(elementwise=result)]
    if isinstance(result, Cost):
        return [result]
    costs = list(result)
    if not all(isinstance(c, Cost) for c in costs):
        raise TypeError(f"a formula returned {result!r}; expected int, Cost or a list of Cost")
    return costs


def _shape_of(x):
    if isinstance(x, torch.Tensor):
        return _padded_shape(x) if x.is_nested else x.shape
    if isinstance(x, (list, tuple)):
        return type(x)(_shape_of(v) for v in x) if type(x) in (list, tuple) else x
    return x


def _tensors(*groups) -> list:
    """The tensors among the values (one level of list/tuple nesting, as in ATen schemas)."""
    found = []
    for group in groups:
        for value in group:
            if isinstance(value, torch.Tensor):
                found.append(value)
            elif isinstance(value, (list, tuple)):
                found.extend(v for v in value if isinstance(v, torch.Tensor))
    return found


def _distinct_numel(t: torch.Tensor) -> int:
    """Elements a kernel must really read: broadcast (stride-0) dimensions count once."""
    if t.is_nested:
        return _padded_shape(t).numel()
    if t.layout != torch.strided:
        return t.numel()
    n = 1
    for size, stride in zip(t.shape, t.stride()):
        if stride != 0:
            n *= size
    return n


def _nbytes(t: torch.Tensor) -> int:
    return _distinct_numel(t) * bitspec.dtype_bits(t.dtype) // 8


def _operand_bytes(args, index, bits) -> int:
    tensor = args[index] if index is not None and index < len(args) else None
    tensor = bitspec.packed_weight(tensor) if isinstance(tensor, torch.ScriptObject) else tensor
    if not isinstance(tensor, torch.Tensor):
        return 0
    return (_distinct_numel(tensor) * bits + 7) // 8


def _meta_like(x: torch.Tensor) -> torch.Tensor:
    """A meta stand-in; a nested tensor (a batch of unequal lengths) stands as its padded
    batch, which is what the same model computes on every device without nesting."""
    if not x.is_nested:
        return torch.empty_like(x, device="meta")
    return torch.empty(_padded_shape(x), dtype=x.dtype, device="meta")


def _padded_shape(x: torch.Tensor) -> torch.Size:
    sizes = x._nested_tensor_size()
    return torch.Size((sizes.size(0), *sizes.amax(0).tolist()) if sizes.numel() else (0,))


def _state_on(model: nn.Module, device: torch.device):
    """Parameters and buffers to run with: meta stand-ins for a meta run; for a real run the
    parameters themselves where they already live on ``device``, and always fresh buffers,
    so that running statistics and similar in-place updates never reach the model."""
    def place(t: torch.Tensor, is_buffer: bool) -> torch.Tensor:
        if device.type == "meta":
            return torch.empty_like(t, device="meta")
        if t.is_meta:
            return torch.zeros(t.shape, dtype=t.dtype, device=device)
        if t.device == device and not is_buffer:
            return t
        return t.detach().to(device, copy=True)

    params = {n: place(p, False) for n, p in model.named_parameters()}
    buffers = {n: place(b, True) for n, b in model.named_buffers()}
    return params, buffers


_MODULE_INTERNALS = frozenset(vars(nn.Module()))


def _plain_attributes_on(model: nn.Module, device: torch.device) -> list:
    """Make the tensors a module keeps in plain attributes (caches such as a rotary
    table computed on a first forward) live on ``device`` for the run, and return what
    to restore afterwards: every plain attribute as it was, so that a forward which fills
    a cache leaves nothing behind (a meta tensor in a cache would break the next real
    forward)."""
    saved = []
    for module in model.modules():
        state = {k: v for k, v in vars(module).items() if k not in _MODULE_INTERNALS}
        saved.append((module, state))
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
                vars(module)[key] = _input_on(value, device)
    return saved


def _restore(saved: list) -> None:
    for module, state in saved:
        attributes = vars(module)
        for key in [k for k in attributes if k not in _MODULE_INTERNALS and k not in state]:
            del attributes[key]
        attributes.update(state)


def _input_on(x, device: torch.device):
    if not isinstance(x, torch.Tensor):
        return x
    if device.type == "meta":
        return x if x.is_meta else torch.empty_like(x, device="meta")
    if x.is_meta:
        return torch.zeros(x.shape, dtype=x.dtype, device=device)
    return x.to(device)


@contextlib.contextmanager
def _onednn_off():
    enabled = torch._C._get_mkldnn_enabled()
    torch._C._set_mkldnn_enabled(False)
    try:
        yield
    finally:
        torch._C._set_mkldnn_enabled(enabled)


@contextlib.contextmanager
def _rng_kept(device: torch.device):
    """Dropout and random masking in train mode must not move the user's random streams."""
    if device.type == "meta":
        yield
        return
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        yield


def _describe(args, kwargs) -> list:
    def one(x):
        if isinstance(x, torch.Tensor):
            return {"shape": list(x.shape), "dtype": str(x.dtype).removeprefix("torch.")}
        return repr(x) if not isinstance(x, (int, float, str, bool, type(None))) else x
    return [one(a) for a in args] + [{k: one(v)} for k, v in kwargs.items()]


def _explain(model: nn.Module, device: torch.device, error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    where = f"{type(model).__name__} raised {type(error).__name__}: {text}"
    lowered = text.lower()
    if device.type == "meta" and ("meta" in lowered or "data-dependent" in lowered
                                  or "item()" in lowered):
        return (f"{where} (the model reads tensor values, which meta tensors do not have; "
                f"profile it with device='cpu')")
    if "shape" in lowered or "size" in lowered or "dimension" in lowered:
        return f"{where} (do the input shapes fit the model?)"
    return where
