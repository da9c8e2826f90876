"""The op counter: a ``TorchDispatchMode`` that costs every ATen op a model runs.

Every op reaches it after PyTorch's Python-level decompositions, so functional calls, ``@``,
``einsum``, grouped convolutions and the fused attention kernels are all seen. Each op is
costed by its formula (:mod:`profiler.formulas`) and tallied to the module now running
(:mod:`profiler.module_tracking`) and to its operator; an op without a formula is counted
as unsupported. Fused kernels with a decomposition are counted as their reference on meta
copies, then run for real.

Device independence: where PyTorch's kernels take device-specific routes, one route is
counted everywhere: a nested batch (``nn.TransformerEncoder``'s fast path for padded
batches) as its padded batch, and 0-dim CPU tensors beside meta tensors as scalars.

Constant tracking: parameters, buffers and tensors made from shapes alone are *constants*,
and so is every result computed from constants only. A MAC between a constant and an
activation is a weight x activation product (``W..A..``), one between two activations is
an activation x activation product (``A..A..``), and work on constants alone (weight
binarization, positional tables) is what a deployed model would precompute: it is reported
apart as ``foldable`` and left out of the inference totals.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map
from torch.utils.weak import WeakIdKeyDictionary

from . import bits as bitspec
from .errors import ProfileError
from .fastmeta import fast_output
from .formulas import Cost, lookup, no_cost
from .module_tracking import ModuleStack
from .op_arguments import op_tensors
from .result import ModuleTally, OperatorTally

__all__ = ["OpCounter"]


class OpCounter(TorchDispatchMode):
    """Counts the ops run under it; :meth:`enter` and :meth:`leave` are the forward hooks
    that tell it which module runs."""

    def __init__(self, running: ModuleStack, constants: WeakIdKeyDictionary,
                 extra_formulas: dict, meta: bool):
        super().__init__()
        self.running = running
        self.constants = constants
        self.extra = extra_formulas
        self.meta = meta  # a meta run: no values, the fast output path
        self.tallies: dict[str, ModuleTally] = defaultdict(ModuleTally)
        self.operators: dict[str, OperatorTally] = defaultdict(OperatorTally)
        self.unsupported: Counter = Counter()
        self.paused = 0
        self.fused_label: Optional[str] = None
        self.handlers: dict = {}
        # tensor -> bits of its values, when fewer than its dtype's
        self.narrow = WeakIdKeyDictionary()
        self.labels: dict = {}
        # Told of every op's real outputs (not a fused kernel's reference): memory
        # (profiler.memory) and, in training, the autograd graph's owners (train_step).
        self.memory = None
        self.tagger = None

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # TorchDispatchMode wraps a subclass's __torch_dispatch__ in torch._dynamo.disable
        # unless told not to: the first op would import torch._dynamo (most of a second)
        # and every op would pass through its wrapper. Nothing is compiled under a profile.
        return False

    # -- the forward hooks -------------------------------------------------------------
    def enter(self, module, args, kwargs):
        self.tallies[self.running.push(module)].calls += 1

    def leave(self, module, args, kwargs, output):
        name = self.running.pop(module)
        if name is None:
            return
        self._mark_output_bits(module, output)
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
            tally = self.tallies[name]
            tally.declared_effective_aa = (tally.declared_effective_aa or 0) + value

    def _mark_output_bits(self, module, output) -> None:
        """A module declaring ``output_bits`` (an activation quantizer) returns values of
        that width: the products that read them count them so (see profiler.bits)."""
        bits = bitspec.declared_output_bits(module)
        value = output[0] if isinstance(output, tuple) and output else output
        if bits is None or not isinstance(value, torch.Tensor) or not value.is_floating_point():
            return
        if bits < bitspec.dtype_bits(value.dtype):
            self.narrow[value] = bits
        elif value in self.narrow:
            del self.narrow[value]

    # -- op counting ---------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.paused:
            return func(*args, **kwargs)
        if self.tagger is not None:
            self.tagger.flush()
        if func in _ANSWERED:
            self._record_call(func)
            return _ANSWERED[func]
        try:
            handler = self.handlers[func]
        except KeyError:
            handler = self.handlers[func] = lookup(func, self.extra)
        if handler is not None and handler.kind == "decompose":
            return self._decompose(func, handler.fn, args, kwargs)
        if not self.meta and (handler is None or handler.fn is not no_cost) \
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
        flat_in = op_tensors(args, kwargs.values())
        constants = self.constants
        all_constant = all(t in constants for t in flat_in)
        kind = None
        if handler is None:
            self.unsupported[self._label(func)] += 1
        elif handler.fn is no_cost:
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
        if self.fused_label is None:
            self._observe(out)
        return out

    def _observe(self, out) -> None:
        name, _ = self.running.current()
        if self.memory is not None:
            self.memory.allocated(out, name, self.running.open_names())
        if self.tagger is not None:
            self.tagger.add(out, name)

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
        flat_in = op_tensors(args, kwargs.values())
        self._mark_constants(out, all(t in self.constants for t in flat_in))
        if outer_label is None:
            self._observe(out)
        return out

    def _scalars_on_meta(self, args, kwargs):
        """0-dim CPU tensors (``torch.tensor(-1e4)``) are scalars that CPU kernels accept
        beside tensors of any device; some meta kernels (``masked_fill``'s fill value)
        reject them, so beside meta tensors they become 0-dim meta tensors."""
        flat = op_tensors(args, kwargs.values())
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
        outputs = [t for t in op_tensors((out,)) if t.is_floating_point()]
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
        for t in op_tensors((out,)):
            if constant:
                self.constants[t] = True
            elif t in self.constants:
                del self.constants[t]  # an in-place op wrote input-dependent values

    def _record_call(self, func):
        """An op that does no arithmetic: counted as a call only."""
        name, _ = self.running.current()
        op_label = self.fused_label or self._label(func)
        if self.fused_label is None:
            self.operators[op_label].calls += 1
        self.tallies[name].ops[op_label] += 1

    def _record(self, func, result, args, flat_in, out, all_constant):
        name, module = self.running.current()
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
                # Each argument's bytes at its own width, before the key's reordering.
                moved += sum(_operand_bytes(args, i, bits) for i, (_, bits) in
                             zip((mac.lhs, mac.rhs), operands))
                if kind == "wa" and not operands[0][0]:
                    operands.reverse()  # weight first
                key = (kind, operands[0][1], operands[1][1])
                tally.macs[key] += mac.count
                op_tally.macs += mac.count
                if kind == "aa":
                    tally.aa_macs[key] += mac.count
        if all_constant and flat_in:
            return
        if not any(cost.macs for cost in costs):
            moved += sum(_nbytes(t) for t in flat_in)
        # The primary result only: auxiliary outputs (a norm's saved statistics) differ
        # between backends and are not part of inference.
        outputs = op_tensors((out,))
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
_CONVERSIONS = {torch.ops.aten._to_copy, torch.ops.aten.to}


def _has_composite_kernel(func) -> bool:
    return torch._C._dispatch_has_kernel_for_dispatch_key(func.name(), _COMPOSITE)


def _any_nested(args) -> bool:
    return any(t.is_nested for t in op_tensors(args))


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
