"""How a module tells the analyzer the bit-widths it really computes and stores with.

Quantized and binarized layers are simulated in floating point during training, so the
tensors' dtypes say nothing about the arithmetic a deployed model would do. A module
states it with up to four optional attributes; modules that state nothing are taken at
their tensors' dtypes (float32 -> 32 bits, float16/bfloat16 -> 16, int8 -> 8, ...).

``weight_bits: int``
    Bits of the *constant* operand of every multiply-accumulate op (linear, conv, matmul,
    ...) that runs directly in this module's ``forward`` (not in a child module). An
    operand is constant when it is computed from parameters, buffers and shapes only, for
    example the binarized weight ``sign(W) * mean(|W|)``.
``activation_bits: int``
    Bits of every operand that depends on the input (activations), for the same ops.
    A product of two activations (attention's Q.K^T and A.V) uses this width for both.
``parameter_bits: Mapping[str, int]``
    Storage bits of this module's own parameters, by attribute name (``{"weight": 1}``).
    Parameters not named keep their dtype's width.
``extra_storage_bits() -> int``
    Bits a deployed model stores for this module beyond its parameters, for values that
    training recomputes on the fly (the per-channel scales of binarized weights).
``output_bits: int``
    Bits of the values this module's ``forward`` returns (its first element, if it returns
    a tuple), for an activation quantizer whose float output holds ``output_bits``-bit
    integers times a scale. Products that read those values (or views of them) take this
    width, unless the module running the product declares ``activation_bits``.

Brevitas layers declare nothing themselves: their widths are read from their quantizers
(:mod:`profiler.brevitas_bits`, loaded only once ``brevitas`` has been imported).

Declarations apply only to ops that run directly in the declaring module, never to its
children, so a float layer inside a binarized block stays float unless it says otherwise.

Sparse attention: an attention module whose pattern lets each query see only some keys
may define ``effective_attention_macs(*args, **kwargs) -> int``. It is called with the
same arguments as ``forward`` (meta tensors during a meta profile, so it must use shapes
only) and returns the activation x activation MACs that the pattern needs. The profile
reports the MACs that ran (a dense-masked implementation runs them all) as ``macs`` and,
with this number in place of the module's own activation x activation MACs, the
``effective_*`` quantities.
"""
from __future__ import annotations

import re
import sys
from typing import Iterator, Mapping, NamedTuple, Optional, Tuple

import torch
from torch import nn

# Operands of at least this many bits are floating point; their MACs are FLOPs.
FLOAT_BITS = 16
BINARY_BITS = 1

_DTYPE_BITS = {
    torch.float64: 64,
    torch.float32: 32,
    torch.float16: 16,
    torch.bfloat16: 16,
    torch.complex64: 64,
    torch.complex128: 128,
    torch.int64: 64,
    torch.int32: 32,
    torch.int16: 16,
    torch.int8: 8,
    torch.uint8: 8,
    torch.bool: 8,
}
# Quantized dtypes of torch.ao (their element_size is the storage width, packed or not).
_DTYPE_BITS.update({torch.quint8: 8, torch.qint8: 8, torch.qint32: 32, torch.quint4x2: 4,
                    torch.quint2x4: 2})
for _name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"):
    if hasattr(torch, _name):
        _DTYPE_BITS[getattr(torch, _name)] = 8


def dtype_bits(dtype: torch.dtype) -> int:
    """Width of one element of ``dtype`` in bits."""
    try:
        return _DTYPE_BITS[dtype]
    except KeyError:
        return torch.empty((), dtype=dtype, device="meta").element_size() * 8


def declared_weight_bits(module: nn.Module) -> Optional[int]:
    bits = _checked_bits(module, "weight_bits")
    return bits if bits is not None else _library_declaration(module, "weight_bits", None)


def declared_activation_bits(module: nn.Module) -> Optional[int]:
    return _checked_bits(module, "activation_bits")


def declared_output_bits(module: nn.Module) -> Optional[int]:
    bits = _checked_bits(module, "output_bits")
    return bits if bits is not None else _library_declaration(module, "output_bits", None)


def parameter_storage_bits(module: nn.Module, name: str, param: torch.Tensor) -> int:
    """Storage bits per element of ``module``'s own parameter ``name``."""
    declared: Mapping[str, int] = (getattr(module, "parameter_bits", None)
                                   or _library_declaration(module, "parameter_bits", {}))
    bits = declared.get(name)
    if bits is None:
        return dtype_bits(param.dtype)
    return _validated(module, f"parameter_bits[{name!r}]", bits)


def extra_storage_bits(module: nn.Module) -> int:
    fn = getattr(module, "extra_storage_bits", None)
    if fn is None:
        library = _library_declaration(module, "extra_storage_bits", 0)
        return quantized_storage_bits(module) + library
    bits = fn() if callable(fn) else fn
    if not isinstance(bits, int) or bits < 0:
        raise TypeError(
            f"{type(module).__name__}.extra_storage_bits must give a non-negative int, got {bits!r}"
        )
    return bits


def unseen_parameters(module: nn.Module, seen: set) -> Iterator[Tuple[str, nn.Parameter]]:
    """``module``'s own parameters whose ids are not in ``seen``, each added to it as it is
    given: a parameter that modules share counts once, at the first."""
    for name, parameter in module.named_parameters(recurse=False):
        if id(parameter) not in seen:
            seen.add(id(parameter))
            yield name, parameter


def model_storage_bits(model: nn.Module) -> int:
    """Storage of ``model`` in bits: every parameter at its storage bits, counted once where
    modules share it, plus each module's :func:`extra_storage_bits` (the analyzer's
    ``storage_bytes`` x 8, without running the model)."""
    total, seen = 0, set()
    for module in model.modules():
        total += extra_storage_bits(module) + sum(
            parameter.numel() * parameter_storage_bits(module, name, parameter)
            for name, parameter in unseen_parameters(module, seen))
    return total


def packed_weight(value) -> Optional[torch.Tensor]:
    """The weight inside torch.ao's packed parameters (a ``torch.ScriptObject`` with
    ``unpack()``: quantized linear and convolution), else None."""
    if isinstance(value, torch.ScriptObject) and value._has_method("unpack"):
        return value.unpack()[0]
    return None


_PER_CHANNEL = {torch.per_channel_affine, torch.per_channel_symmetric,
                torch.per_channel_affine_float_qparams}
QPARAM_BITS = 64  # a float32 scale and an int32 zero point


def quantized_storage_bits(module: nn.Module) -> int:
    """Storage of a ``torch.ao.nn.quantized`` module (static or dynamic), whose weights are
    packed and so no parameters: the weight at its quantized dtype's bits, its scale and
    zero point (one pair per output channel for per-channel schemes), the bias at its
    dtype's bits and, for static quantization, the output's scale and zero point. 0 for
    any other module."""
    if not type(module).__module__.startswith("torch.ao.nn.quantized"):
        return 0
    from torch.ao.nn.quantized.modules.utils import WeightedQuantizedModule

    if not isinstance(module, WeightedQuantizedModule):  # its packed-parameter holder too
        return 0
    weight, bias = module._weight_bias()
    bits = weight.numel() * dtype_bits(weight.dtype)
    channels = weight.q_per_channel_scales().numel() if weight.qscheme() in _PER_CHANNEL else 1
    bits += channels * QPARAM_BITS
    if bias is not None:
        bits += bias.numel() * dtype_bits(bias.dtype)
    if ".dynamic." not in type(module).__module__:
        bits += QPARAM_BITS  # dynamic quantization computes the output in float
    return bits


_PAIR_LETTERS = {"wa": ("W", "A"), "aa": ("A", "A"), "cc": ("C", "C")}
_PAIR_LABEL = re.compile(r"^([A-Z])(\d+)([A-Z])(\d+)$")


class OperandPair(NamedTuple):
    """The operand widths of multiply-accumulates, the key of every breakdown by bit pair.

    ``kind`` is ``"wa"`` (weight x activation, the weight first), ``"aa"`` (two
    activations) or ``"cc"`` (two constants: work a deployed model would precompute). Equal
    to the plain ``(kind, bits_a, bits_b)`` tuple the analyzer tallies by. Written as
    ``W1A1``, ``A1A1`` or ``C32C32`` only where a profile is output (``label``), and read
    back from that spelling only where a saved profile is loaded (``parse``)."""

    kind: str
    bits_a: int
    bits_b: int

    @property
    def bops_per_mac(self) -> int:
        """Bit operations one of these multiply-accumulates counts (Bayesian Bits: the
        product of the operand widths)."""
        return self.bits_a * self.bits_b

    @property
    def label(self) -> str:
        first, second = _PAIR_LETTERS[self.kind]
        return f"{first}{self.bits_a}{second}{self.bits_b}"

    @classmethod
    def parse(cls, label: str) -> "OperandPair":
        """``"W1A1"`` -> ``OperandPair("wa", 1, 1)``: the inverse of :attr:`label`."""
        match = _PAIR_LABEL.match(label)
        kinds = {letters: kind for kind, letters in _PAIR_LETTERS.items()}
        kind = kinds.get((match.group(1), match.group(3))) if match else None
        if kind is None:
            raise ValueError(f"bit pair {label!r}: expected W<bits>A<bits>, A<bits>A<bits> "
                             f"or C<bits>C<bits>")
        return cls(kind, int(match.group(2)), int(match.group(4)))

    @property
    def precision_class(self) -> str:
        """``nonq`` (both operands float), ``bq`` (both binary) or ``q`` (anything else)."""
        if self.bits_a >= FLOAT_BITS and self.bits_b >= FLOAT_BITS:
            return "nonq"
        if self.bits_a <= BINARY_BITS and self.bits_b <= BINARY_BITS:
            return "bq"
        return "q"


def _library_declaration(module: nn.Module, what: str, default):
    """What a quantization library's layer declares through its own configuration, so far
    Brevitas's (:mod:`profiler.brevitas_bits`: ``weight_bits``, ``parameter_bits``,
    ``output_bits``, ``extra_storage_bits``). A Brevitas layer exists only once ``brevitas``
    was imported: until then nothing is asked, and the counting core never imports it."""
    if "brevitas" not in sys.modules:
        return default
    from . import brevitas_bits

    return getattr(brevitas_bits, what)(module)


def _checked_bits(module: nn.Module, attr: str) -> Optional[int]:
    bits = getattr(module, attr, None)
    if bits is None:
        return None
    return _validated(module, attr, bits)


def _validated(module: nn.Module, what: str, bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
        raise TypeError(f"{type(module).__name__}.{what} must be a positive int, got {bits!r}")
    return bits
