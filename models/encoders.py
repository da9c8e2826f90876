"""The encoder families of the zoo, one registry entry each.

An :class:`EncoderFamily` says everything the rest of the project needs to know about one
kind of encoder: its name (``HubertConfig.encoder``), how its encoder is built from a
config, which attention implementations it accepts, whether its blocks hold convolution
modules, what it derives and checks in a config, and the zoo models it contributes
(their shapes; each also gets a ``bq-`` twin). ``hubert.py`` builds from these entries,
``configuration.py`` validates with them, ``registry.py`` names the zoo's models from them,
and the study plans its convolution ablation by them: a new family is one :func:`register`
call here, beside its block module, plus its tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from torch import nn

from .conformer import conformer_encoder
from .quantization import BlockQuantization
from .sparseformer import ATTENTION_IMPLEMENTATIONS, FixedSparsePattern, sparseformer_encoder
from .squeezeformer import (
    default_recover_index,
    default_reduce_index,
    reduce_recover_problem,
    squeezeformer_encoder,
)
from .transformer import transformer_encoder

# A ``HubertConfig``: not imported, since configuration.py validates through this module.
Config = Any
# (layers, dim, heads, ffn_dim), then the keyword arguments every family's builder takes:
# activation_name, dropout, attention_dropout, activation_dropout, quantization.
Shape = Tuple[int, int, int, int]
Builder = Callable[[Config, Shape, Dict[str, Any]], nn.Module]


@dataclass(frozen=True)
class EncoderFamily:
    name: str
    build: Builder
    # Zoo model name -> its config fields (without ``encoder``) and ``ffn_ratio``.
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Whether the blocks hold convolution modules: ``conv_kernel_size`` must then be odd,
    # and a convolution-only ablation has something to quantize.
    has_convolution: bool = False
    attentions: Tuple[str, ...] = ("dense",)  # the attention implementations it accepts
    # Config fields the family fills in when left None (called before validation).
    defaults: Optional[Callable[[Config], Dict[str, Any]]] = None
    # The family's own check of a config: an error message, or None when it can build.
    check: Optional[Callable[[Config], Optional[str]]] = None


FAMILIES: Dict[str, EncoderFamily] = {}


def register(family: EncoderFamily) -> EncoderFamily:
    """Adds ``family`` to the zoo (after the ones before it, which fixes the model order)."""
    if family.name in FAMILIES:
        raise ValueError(f"encoder family {family.name!r} is already registered")
    taken = {model for other in FAMILIES.values() for model in other.presets}
    clash = sorted(taken & set(family.presets))
    if clash:
        raise ValueError(f"encoder family {family.name!r}: model names {clash} are taken")
    FAMILIES[family.name] = family
    return family


def families() -> List[EncoderFamily]:
    return list(FAMILIES.values())


def family(name: str) -> EncoderFamily:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown encoder {name!r}; known: {list(FAMILIES)}") from None


def build_encoder(config: Config) -> nn.Module:
    """The encoder layers of ``config``, built by its family."""
    common = dict(activation_name=config.ffn_activation, dropout=config.dropout,
                  attention_dropout=config.attention_dropout,
                  activation_dropout=config.activation_dropout,
                  quantization=BlockQuantization.of(config.quantization,
                                                    config.quantize_modules))
    shape = (config.layers, config.dim, config.heads, config.ffn_dim)
    return family(config.encoder).build(config, shape, common)


# ------------------------------------------------------------------------- the families
register(EncoderFamily(
    "transformer",
    build=lambda config, shape, common: transformer_encoder(*shape, **common),
    presets={"vanilla": dict(layers=12, dim=768, heads=12, ffn_ratio=4,
                             ffn_activation="gelu")},
))


register(EncoderFamily(
    "conformer",
    build=lambda config, shape, common: conformer_encoder(
        *shape, kernel_size=config.conv_kernel_size, max_len=config.max_relative_positions,
        **common),
    presets={"conformer-s": dict(layers=16, dim=144, heads=4, ffn_ratio=4,
                                 ffn_activation="swish")},
    has_convolution=True,
))


def _squeezeformer_defaults(config: Config) -> Dict[str, Any]:
    reduce_index = config.reduce_index
    if reduce_index is None:
        reduce_index = default_reduce_index(config.layers)
    recover_index = config.recover_index
    if recover_index is None and isinstance(reduce_index, int):
        # A reduce_index that is not a number is left for the check to name.
        recover_index = default_recover_index(config.layers, reduce_index)
    return {"reduce_index": reduce_index, "recover_index": recover_index}


def _squeezeformer_check(config: Config) -> Optional[str]:
    return reduce_recover_problem(config.reduce_index, config.recover_index, config.layers)


register(EncoderFamily(
    "squeezeformer",
    build=lambda config, shape, common: squeezeformer_encoder(
        *shape, reduce_index=config.reduce_index, recover_index=config.recover_index,
        kernel_size=config.conv_kernel_size, max_len=config.max_relative_positions,
        conv_use_glu=config.conv_use_glu, **common),
    presets={"squeezeformer-xs": dict(layers=16, dim=144, heads=4, ffn_ratio=4,
                                      ffn_activation="swish")},
    has_convolution=True,
    defaults=_squeezeformer_defaults,
    check=_squeezeformer_check,
))


def _sparseformer_check(config: Config) -> Optional[str]:
    block, summary = config.sparse_block, config.sparse_summary
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (block, summary)):
        return f"sparse_block and sparse_summary must be integers, got {block!r} and {summary!r}"
    try:        # the pattern's own rule: one place says which pairs are allowed
        FixedSparsePattern(block, summary)
    except ValueError as error:
        return f"{error} (sparse_block {block}, sparse_summary {summary})"
    return None


register(EncoderFamily(
    "sparseformer",
    build=lambda config, shape, common: sparseformer_encoder(
        *shape, attention=config.attention,
        pattern=FixedSparsePattern(config.sparse_block, config.sparse_summary), **common),
    presets={
        "sparseformer-dn-s": dict(layers=16, dim=256, heads=4, ffn_ratio=4,
                                  ffn_activation="gelu", attention="masked"),
        "sparseformer-sw-s": dict(layers=8, dim=512, heads=4, ffn_ratio=4,
                                  ffn_activation="gelu", attention="masked"),
    },
    attentions=tuple(ATTENTION_IMPLEMENTATIONS),
    check=_sparseformer_check,
))
