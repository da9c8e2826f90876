"""The bit pair a layer computes with (``Quantization``: weight bits, activation bits, the
k-bit weight scale) and its per-module-type form for an encoder block (``BlockQuantization``).

The one type of a weight/activation bit pair in the project: the zoo builds layers from it,
the trainer's distillation chains are lists of it, and the paper layer labels a row's
precision with it. ``Quantization.parse("W1A4")`` reads the ``W<bits>A<bits>`` spelling and
``label`` writes it. This module does not import torch, so the paper layer and the
command line can read it without loading the models.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

FULL_PRECISION_BITS = 32  # a side at this width stays float
WEIGHT_SCALES = ("statistics", "learned")
_LABEL = re.compile(r"^W(\d+)A(\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Quantization:
    """The bit pair a layer computes with. 32 on a side: that side stays float."""

    weight_bits: int = FULL_PRECISION_BITS
    activation_bits: int = FULL_PRECISION_BITS
    weight_scale: str = "statistics"   # k-bit weights (k >= 2): "statistics" or "learned"

    def __post_init__(self):
        for name in ("weight_bits", "activation_bits"):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, int)
                    or not 1 <= value <= FULL_PRECISION_BITS):
                raise ValueError(f"{name} must be a whole number from 1 to {FULL_PRECISION_BITS} "
                                 f"({FULL_PRECISION_BITS} = full precision), got {value!r}")
        if self.weight_scale not in WEIGHT_SCALES:
            raise ValueError(f"weight_scale must be one of {list(WEIGHT_SCALES)}, "
                             f"got {self.weight_scale!r}")

    @classmethod
    def parse(cls, text: str) -> "Quantization":
        """``"W1A4"`` (any case, surrounding blanks ignored) -> ``Quantization(1, 4)``."""
        match = _LABEL.match(text.strip())
        if not match:
            raise ValueError(f"precision {text!r}: expected W<bits>A<bits>, e.g. W1A1 or W32A32")
        try:
            return cls(int(match.group(1)), int(match.group(2)))
        except ValueError as error:
            raise ValueError(f"precision {text!r}: {error}") from None

    @property
    def weights_quantized(self) -> bool:
        return self.weight_bits < FULL_PRECISION_BITS

    @property
    def activations_quantized(self) -> bool:
        return self.activation_bits < FULL_PRECISION_BITS

    @property
    def quantized(self) -> bool:
        return self.weights_quantized or self.activations_quantized

    @property
    def full_precision(self) -> bool:
        return not self.quantized

    @property
    def label(self) -> str:
        """``W1A4``: the spelling :meth:`parse` reads."""
        return f"W{self.weight_bits}A{self.activation_bits}"


FULL_PRECISION = Quantization()
W1A1 = Quantization(1, 1)

# The module types of an encoder block; ``quantize_modules`` (zoo config) picks the ones a
# quantized build quantizes, for ablations that binarize one type and keep the rest float.
MODULE_TYPES = ("attention", "convolution", "feed_forward")


@dataclass(frozen=True)
class BlockQuantization:
    """The bit pair of each module type of an encoder block. The Squeezeformer's time
    reduction (strided depthwise + pointwise convolution) and recovery (a Linear layer that
    resamples) count as convolution modules."""

    attention: Quantization = FULL_PRECISION
    convolution: Quantization = FULL_PRECISION
    feed_forward: Quantization = FULL_PRECISION

    @classmethod
    def of(cls, quantization: "Quantization | BlockQuantization",
           modules: tuple = MODULE_TYPES) -> "BlockQuantization":
        """``quantization`` for the module types in ``modules``, full precision elsewhere
        (a ``BlockQuantization`` is returned as it is)."""
        if isinstance(quantization, cls):
            return quantization
        return cls(**{kind: quantization if kind in modules else FULL_PRECISION
                      for kind in MODULE_TYPES})
