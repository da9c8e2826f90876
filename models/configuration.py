"""The configuration of one zoo model: everything ``HuBERT(config)`` needs to build it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

from . import encoders
from .conformer import CONV_KERNEL_SIZE, MAX_RELATIVE_POSITIONS
from .frontends import FRONTENDS
from .quantization import FULL_PRECISION_BITS, MODULE_TYPES, Quantization
from .transformer import ACTIVATIONS

DEPTHWISE_SCALES = ("tensor", "channel")


def is_real_number(value: Any) -> bool:
    """An int or float, not a bool (which Python counts as an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class HubertConfig:
    name: str
    encoder: str                      # an encoder family (models/encoders.py)
    layers: int
    dim: int
    heads: int
    ffn_dim: int
    frontend: str = "fastconv"        # "fastconv" | "wav2vec2"
    binarized: bool = False           # BiT W1A1 encoder (the bq-* models)
    # The encoder's bit pair (32 = float); None: 1 for a binarized model, else 32.
    weight_bits: Optional[int] = None
    activation_bits: Optional[int] = None
    weight_scale: str = "statistics"  # k-bit weights (k >= 2): "statistics" | "learned"
    # Which module types of the encoder blocks a quantized build quantizes (ablations: one
    # type at a time, the rest float); also "attention,convolution" as one string.
    quantize_modules: Tuple[str, ...] = MODULE_TYPES
    # The weight scale of binarized (quantized, statistics-scaled) depthwise convolutions:
    # "tensor", one per weight tensor (BiT's default), or "channel", one per channel (a
    # sensitivity variant: a depthwise kernel has only K weights per channel to share one).
    depthwise_scale: str = "tensor"
    ffn_activation: str = "gelu"      # BiT builds use "relu" (its {0, 1} binarizer follows it)

    # attention: one its encoder family accepts ("dense"; sparseformer: "masked" | "blocked")
    attention: str = "dense"
    sparse_block: int = 32            # l: block width ("stride" in fairseq)
    sparse_summary: int = 8           # c: summary columns per block ("expressivity")

    # conformer / squeezeformer
    conv_kernel_size: int = CONV_KERNEL_SIZE
    conv_use_glu: bool = True
    max_relative_positions: int = MAX_RELATIVE_POSITIONS
    reduce_index: Optional[int] = None   # squeezeformer; None: (layers - 2) // 2
    recover_index: Optional[int] = None  # squeezeformer; None: layers - 1

    # HuBERT around the encoder
    pos_conv_kernel: int = 128
    pos_conv_groups: int = 16
    final_dim: int = 256
    num_classes: int = 500
    mask_prob: float = 0.8
    mask_length: int = 10
    logit_temperature: float = 0.1
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    input_dropout: float = 0.1
    feature_grad_mult: float = 0.1
    # Whether BiT also binarizes (quantizes, at the encoder's bit pair) the 512 -> D input
    # projection and the final projection (the paper does not say; it moves the BQ storage
    # by about 0.5-1.5 MB).
    binarize_projections: bool = False

    def __post_init__(self):
        self._resolve_bits()
        self._resolve_modules()
        self._validate_sizes()
        family = encoders.FAMILIES.get(self.encoder)  # an unknown one fails in validate
        if family is not None and family.defaults is not None:
            for name, value in family.defaults(self).items():
                object.__setattr__(self, name, value)
        self.validate()

    @property
    def family(self) -> encoders.EncoderFamily:
        """The registry entry of this config's encoder."""
        return encoders.family(self.encoder)

    @property
    def quantization(self) -> Quantization:
        try:
            return Quantization(self.weight_bits, self.activation_bits, self.weight_scale)
        except ValueError as error:
            self._fail(str(error))

    def _resolve_bits(self) -> None:
        if self.binarized:
            chosen = {name: getattr(self, name) for name in ("weight_bits", "activation_bits")
                      if getattr(self, name) not in (None, 1)}
            if chosen:
                self._fail(f"binarized (bq-) models are BiT's W1A1, got {chosen}; for another "
                           "bit pair build the full-precision model with weight_bits and "
                           "activation_bits")
        default = 1 if self.binarized else FULL_PRECISION_BITS
        for name in ("weight_bits", "activation_bits"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)

    def _resolve_modules(self) -> None:
        chosen = self.quantize_modules
        if isinstance(chosen, str):
            chosen = chosen.replace("+", ",").split(",")
        if not isinstance(chosen, (tuple, list)) or not all(isinstance(m, str) for m in chosen):
            self._fail(f"quantize_modules must name module types, got {chosen!r}")
        chosen = {m.strip().replace("-", "_") for m in chosen if m.strip()}
        unknown = sorted(chosen - set(MODULE_TYPES))
        if unknown or not chosen:
            self._fail(f"quantize_modules: unknown or no module types {unknown}; choose from "
                       f"{', '.join(MODULE_TYPES)}")
        object.__setattr__(self, "quantize_modules",
                           tuple(m for m in MODULE_TYPES if m in chosen))

    def _fail(self, message: str):
        raise ValueError(f"{self.name}: {message}")

    def _validate_sizes(self) -> None:
        for name in ("layers", "dim", "heads", "ffn_dim", "final_dim", "num_classes",
                     "pos_conv_kernel", "pos_conv_groups", "mask_length", "max_relative_positions",
                     "conv_kernel_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                self._fail(f"{name} must be a positive integer, got {value!r}")

    def validate(self) -> None:
        """Raises ValueError, naming the model and the field, for a config that cannot build."""
        fail = self._fail
        self._validate_sizes()
        self.quantization  # raises for bits outside 1..32 or an unknown weight_scale
        if self.encoder not in encoders.FAMILIES:
            fail(f"unknown encoder {self.encoder!r}; known: {list(encoders.FAMILIES)}")
        family = self.family
        if self.dim % self.heads:
            fail(f"heads ({self.heads}) must divide dim ({self.dim})")
        if self.dim % self.pos_conv_groups:
            fail(f"pos_conv_groups ({self.pos_conv_groups}) must divide dim ({self.dim})")
        if self.frontend not in FRONTENDS:
            fail(f"unknown frontend {self.frontend!r}; known: {sorted(FRONTENDS)}")
        if self.depthwise_scale not in DEPTHWISE_SCALES:
            fail(f"depthwise_scale must be one of {list(DEPTHWISE_SCALES)}, "
                 f"got {self.depthwise_scale!r}")
        if self.ffn_activation not in ACTIVATIONS:
            fail(f"unknown ffn_activation {self.ffn_activation!r}; known: {list(ACTIVATIONS)}")
        if self.attention not in family.attentions:
            if family.attentions == ("dense",):
                others = [f"{f.name}s" for f in encoders.families()
                          if f.attentions != ("dense",)]
                fail(f"attention {self.attention!r} is only for {', '.join(others)}; "
                     f"{self.encoder} uses 'dense'")
            fail(f"attention must be one of {list(family.attentions)} for a {family.name}, "
                 f"got {self.attention!r}")
        if family.has_convolution and self.conv_kernel_size % 2 == 0:
            fail(f"conv_kernel_size must be odd, got {self.conv_kernel_size}")
        if self.quantization.quantized and not family.has_convolution \
                and self.quantize_modules == ("convolution",):
            fail(f"quantize_modules names only convolution, which a {family.name} has none "
                 f"of: this {self.quantization.label} build would quantize nothing")
        problem = family.check(self) if family.check is not None else None
        if problem:
            fail(problem)
        for name in ("mask_prob", "dropout", "attention_dropout", "activation_dropout",
                     "input_dropout"):
            value = getattr(self, name)
            if not (is_real_number(value) and 0.0 <= value <= 1.0):
                fail(f"{name} must be in [0, 1], got {value!r}")
        if not (is_real_number(self.logit_temperature) and self.logit_temperature > 0):
            fail(f"logit_temperature must be positive, got {self.logit_temperature!r}")
