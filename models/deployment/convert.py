"""``deploy(model)``: the zoo model with every W1A1 product on packed operands, and a
save/load pair for deployed zoo models."""
from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Union

import torch
from torch import nn

from ..attention import QuantizedDotProductAttention
from ..bit import QuantizedConv1d, QuantizedLinear, uninitialized_binarizers
from ..conformer import QuantizedRelPositionAttentionCore, RelPositionSelfAttention
from ..sparseformer import QuantizedBlockedSparseAttention, QuantizedMaskedSparseAttention
from .attention import (
    PackedDotProductAttention,
    PackedRelPositionAttentionCore,
    PackedRelPositionSelfAttention,
    PackedSparseAttention,
)
from .linear import PackedLinear, conv_refusal, is_binary, packed_conv

_CORES = {
    QuantizedDotProductAttention: PackedDotProductAttention,
    QuantizedMaskedSparseAttention: PackedSparseAttention,
    QuantizedBlockedSparseAttention: PackedSparseAttention,
    QuantizedRelPositionAttentionCore: PackedRelPositionAttentionCore,
}
_FORMAT = "packed-w1a1/1"


def _packed_form(module: nn.Module):
    """The deployed replacement of ``module``, or None where it stays as it is."""
    if is_binary(module):
        if isinstance(module, QuantizedLinear):
            return PackedLinear
        if isinstance(module, QuantizedConv1d):
            return packed_conv
    core = _CORES.get(type(module))
    if core is not None and module.activation_bits == 1:
        return core
    return None


def packed_layers(model: nn.Module) -> list:
    """Names of the modules of ``model`` that :func:`deploy` puts on packed operands (its
    W1A1 layers and 1-bit attention cores); empty for a model with nothing to deploy."""
    return [name for name, module in model.named_modules() if _packed_form(module)]


def deployable_layers(model: nn.Module) -> list:
    """:func:`packed_layers`, or ValueError for a model with nothing to deploy or a layer no
    packed kernel runs (the check that :func:`deploy` and callers that refuse early share)."""
    targets = packed_layers(model)
    if not targets:
        raise ValueError(f"{type(model).__name__} has no binarized (W1A1) layer to deploy: "
                         "models.deploy packs 1-bit weights and activations only")
    for name, module in model.named_modules():
        refusal = conv_refusal(module) if _packed_form(module) is packed_conv else None
        if refusal:
            raise ValueError(f"{name}: {refusal}")
    return targets


def deploy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode, no gradients) in which every binarized (W1A1) Linear
    layer, pointwise and depthwise convolution and 1-bit attention core runs on packed
    operands; everything else is the original module. ``model`` is left unchanged.

    Raises ValueError for a model without binarized layers, with a binarized convolution no
    packed kernel runs, or with binarizers that were never initialized."""
    targets = deployable_layers(model)
    uninitialized = uninitialized_binarizers(model)
    if uninitialized:
        shown = ", ".join(uninitialized[:3]) + (", ..." if len(uninitialized) > 3 else "")
        raise ValueError(f"{len(uninitialized)} binarizer(s) never initialized ({shown}): their "
                         "scales are still the placeholder 1.0; deploy a model whose binarizers "
                         "are initialized (trained, loaded from a run, or after one "
                         "training-mode forward)")
    # The float weights of the layers about to be packed are shared, not copied: the packed
    # layers drop them.
    memo = {id(module.weight): module.weight for module in model.modules() if is_binary(module)}
    deployed = copy.deepcopy(model, memo).eval()
    with torch.no_grad():
        for name in targets:
            _replace(deployed, name, _packed_form(deployed.get_submodule(name)))
        # After their children: the position table is packed with linear_pos's offset.
        for name, module in list(deployed.named_modules()):
            if isinstance(module, RelPositionSelfAttention) and \
                    isinstance(module.linear_pos, PackedLinear):
                _replace(deployed, name, PackedRelPositionSelfAttention)
    deployed.requires_grad_(False)
    return deployed


def _replace(root: nn.Module, name: str, packed) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, packed(getattr(parent, child)))


def save(deployed: nn.Module, path: Union[str, Path]) -> None:
    """Writes a deployed zoo model: its config and its packed state (1 bit per binarized
    weight; the rest as the model stores it). The state goes into one byte buffer with an
    index, not a file entry per tensor: a zoo model has over a thousand small tensors, and
    their per-entry overhead alone would add about 3 % to a small model's size."""
    config = getattr(deployed, "config", None)
    if config is None:
        raise ValueError("save() takes a deployed zoo model (one with a .config); "
                         "save another model's state_dict() instead")
    state = deployed.state_dict()
    names = list(state)
    tensors = [state[name].detach().cpu().contiguous() for name in names]
    blob = torch.cat([t.reshape(-1).view(torch.uint8) for t in tensors]) if tensors else \
        torch.empty(0, dtype=torch.uint8)
    torch.save({"format": _FORMAT, "config": dataclasses.asdict(config),
                "names": "\n".join(names),
                "dtypes": [str(t.dtype).removeprefix("torch.") for t in tensors],
                "shapes": [tuple(t.shape) for t in tensors], "blob": blob}, path)


def load(path: Union[str, Path]) -> nn.Module:
    """A deployed zoo model written by :func:`save`."""
    from ..bit import mark_binarizers_initialized
    from ..configuration import HubertConfig
    from ..hubert import HuBERT

    saved = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or saved.get("format") != _FORMAT:
        raise ValueError(f"{path}: not a deployed model written by models.deployment.save")
    state, start, blob = {}, 0, saved["blob"]
    for name, dtype, shape in zip(saved["names"].split("\n"), saved["dtypes"], saved["shapes"]):
        dtype = getattr(torch, dtype)
        nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        state[name] = blob[start: start + nbytes].view(dtype).reshape(shape).clone()
        start += nbytes
    config = dict(saved["config"])
    config["quantize_modules"] = tuple(config["quantize_modules"])
    model = HuBERT(HubertConfig(**config))
    mark_binarizers_initialized(model)
    deployed = deploy(model)
    deployed.load_state_dict(state)
    return deployed
