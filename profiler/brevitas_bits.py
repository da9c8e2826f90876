"""The bit widths of Brevitas layers, read from their quantizers: Brevitas's own way of
declaring what :mod:`profiler.bits` asks modules to declare, so its models need no user code.

Brevitas (``brevitas.nn``) simulates quantization in floating point: a layer's weight
quantizer (``weight_quant``) and its activation quantizers (``input_quant``, ``act_quant``,
``output_quant``: ``ActQuantProxyFromInjector`` submodules) round float tensors to a grid
of ``2**bit_width`` values, and the layer then runs the float op. This module reads the
widths from each quantizer's configuration (its injector's constant ``bit_width``), never
from tensor values, so it answers the same during a meta run as on CPU:

* a weight layer (``QuantLinear``, ``QuantConv1d``, ``QuantConv2d``): ``weight_bits`` is
  its weight quantizer's width; its weight is stored at that width, its bias at the bias
  quantizer's (``Int32Bias``: 32) or its dtype's when the bias is not quantized, and its
  weight scales (one per tensor or per output channel; a zero point beside each for
  asymmetric quantizers) at 32 bits each, unless the quantizer holds them as parameters
  (then they are counted as the quantizer's parameters);
* an enabled activation quantizer declares ``output_bits``: the values it returns hold
  ``bit_width``-bit integers (times a scale), so every product that reads them counts
  them at that width. ``QuantIdentity``/``QuantReLU`` (and Brevitas's other quantized
  activations) and ``QuantMultiheadAttention`` declare nothing of their own: their
  quantizers and their ``QuantLinear`` projections do.

A quantizer is disabled (``weight_quant=None``, the default ``input_quant``) or a width is
learned (``bit_width_impl_type="parameter"``): the tensor is counted at its dtype, the
latter with a warning. A ``brevitas.nn`` layer of any other kind (``QuantEmbedding``,
``QuantLSTM``, ``QuantConvTranspose1d``...) is counted at its tensors' dtypes (float) with
a warning naming it, never silently; the activation quantizers inside it still narrow
what they return.

Brevitas's ``QuantTensor`` (``return_quant_tensor=True``, and inside
``QuantMultiheadAttention``) reads its own values in Python (``zero_point != 0``), which
meta tensors do not have: profile such models with ``device="cpu"``.

Asked only by :mod:`profiler.bits`, and only once ``brevitas`` is in ``sys.modules``
(a Brevitas layer exists only then): the counting core never imports Brevitas itself.
"""
from __future__ import annotations

import warnings
from typing import Mapping, NamedTuple, Optional

import brevitas.nn
from brevitas.nn import QuantConv1d, QuantConv2d, QuantLinear, QuantMultiheadAttention
from brevitas.nn.mixin.base import QuantLayerMixin
from brevitas.nn.quant_layer import QuantNonLinearActLayer
from brevitas.proxy.runtime_quant import ActQuantProxyFromInjectorBase
from torch import nn

__all__ = ["weight_bits", "parameter_bits", "output_bits", "extra_storage_bits"]

SCALE_BITS = 32  # a float32 scale
ZERO_POINT_BITS = 32  # an int32 zero point (with the scale: profiler.bits.QPARAM_BITS)

WEIGHT_LAYERS = (QuantLinear, QuantConv1d, QuantConv2d)
# Layers whose own ops run at widths their quantizer submodules and children declare.
COMPOSED_LAYERS = (QuantNonLinearActLayer, QuantMultiheadAttention)
_CONSTANT_WIDTHS = {"CONST", "STATEFUL_CONST"}


class Declared(NamedTuple):
    """What a Brevitas module declares, in the terms of :mod:`profiler.bits`."""

    weight_bits: Optional[int] = None
    parameter_bits: Mapping[str, int] = {}
    output_bits: Optional[int] = None


UNDECLARED = Declared()


def weight_bits(module: nn.Module) -> Optional[int]:
    return declaration(module).weight_bits


def parameter_bits(module: nn.Module) -> Mapping[str, int]:
    return declaration(module).parameter_bits


def output_bits(module: nn.Module) -> Optional[int]:
    return declaration(module).output_bits


def declaration(module: nn.Module) -> Declared:
    """The widths ``module`` computes and stores with; :data:`UNDECLARED` for modules that
    are not Brevitas layers or quantizers, and for layers of a kind not known here."""
    if isinstance(module, ActQuantProxyFromInjectorBase):
        enabled = module.is_quant_enabled and module.fused_activation_quant_proxy is not None
        return Declared(output_bits=quantizer_bits(module, module)) if enabled else UNDECLARED
    if not isinstance(module, WEIGHT_LAYERS):
        return UNDECLARED
    weight = quantizer_bits(module, module.weight_quant)
    parameter_bits = {}
    if weight is not None:
        parameter_bits["weight"] = weight
    if module.bias is not None:
        bias = quantizer_bits(module, module.bias_quant)
        if bias is not None:
            parameter_bits["bias"] = bias
    return Declared(weight_bits=weight, parameter_bits=parameter_bits)


def quantizer_bits(layer: nn.Module, proxy: nn.Module) -> Optional[int]:
    """The constant bit width a quantizer proxy is configured with; None where it is
    disabled, or learned (with a warning: it is counted at the tensor's dtype)."""
    if not proxy.is_quant_enabled:
        return None
    injector = proxy.quant_injector
    kind = _option(injector, "bit_width_impl_type", "CONST")
    bits = _resolved(injector, "bit_width")
    if kind in _CONSTANT_WIDTHS and isinstance(bits, int) and not isinstance(bits, bool):
        return bits
    warnings.warn(f"Brevitas {type(layer).__name__}: the bit width of its quantizer "
                  f"{type(proxy).__name__} is not a constant ({kind.lower()}); its tensors "
                  f"are counted at their dtype", stacklevel=2)
    return None


def extra_storage_bits(module: nn.Module) -> int:
    """Bits a deployed Brevitas weight layer stores beside its parameters: the weight
    scales (and zero points) that its quantizer recomputes from the weight at every
    forward. Warns about (and counts nothing for) Brevitas layers of unknown kinds."""
    if isinstance(module, WEIGHT_LAYERS):
        return _weight_scale_bits(module)
    if _is_unknown_layer(module):
        warnings.warn(f"Brevitas {type(module).__name__} is a layer kind the profiler does "
                      f"not read bit widths from: its weights and products are counted as "
                      f"float (their dtype)", stacklevel=2)
    return 0


def _weight_scale_bits(layer: nn.Module) -> int:
    proxy = layer.weight_quant
    if quantizer_bits(layer, proxy) is None:
        return 0
    tensor_quant = proxy.tensor_quant
    per = _option(proxy.quant_injector, "scaling_per_output_type", "TENSOR")
    scales = layer.weight.shape[0] if per == "CHANNEL" else 1
    if per not in ("TENSOR", "CHANNEL"):  # per group: ask the quantizer
        scales = proxy.scale().numel()
    bits = 0
    scaling = getattr(tensor_quant, "scaling_impl", None)
    if scaling is not None and not any(True for _ in scaling.parameters()):
        bits += scales * SCALE_BITS
    zero_point = getattr(tensor_quant, "zero_point_impl", None)
    if zero_point is not None and type(zero_point).__name__ != "ZeroZeroPoint" \
            and not any(True for _ in zero_point.parameters()):
        bits += scales * ZERO_POINT_BITS
    return bits


def _is_unknown_layer(module: nn.Module) -> bool:
    """A quantized Brevitas layer (a ``QuantLayerMixin``, or one of the ``Quant*`` layers
    ``brevitas.nn`` exports) of a kind not read here; its float helpers (``ScaleBias``)
    and private parts are not layers a user chose."""
    if isinstance(module, (*WEIGHT_LAYERS, *COMPOSED_LAYERS)):
        return False
    if isinstance(module, QuantLayerMixin):
        return True
    return any(cls.__name__.startswith("Quant") and vars(brevitas.nn).get(cls.__name__) is cls
               for cls in type(module).__mro__)


def _option(injector, name: str, default: str) -> str:
    """A quantizer option, as Brevitas's enum or as its string (``"parameter"``)."""
    value = _resolved(injector, name)
    return default if value is None else str(getattr(value, "name", value)).upper()


def _resolved(injector, name: str):
    """An injector attribute, or None where the quantizer does not define it (Brevitas's
    injectors raise their own DependencyError for missing names)."""
    try:
        return getattr(injector, name)
    except Exception:  # noqa: BLE001 - any resolution failure means "not configured"
        return None
