"""The model zoo: HuBERT with five encoders, each in full precision and BiT-binarized.

    import models
    models.names()                                   # the ten Table 1 models
    model = models.build("sparseformer-dn-s", attention="blocked")
    out = model(waveforms, lengths)                  # HubertOutput
"""
from .bit import BinaryConv1d, BinaryLinear, ElasticBinarizer, binarize_weight
from .config import HubertConfig
from .hubert import HuBERT, HubertOutput, PretrainOutput
from .registry import build, config, names
from .sparseformer import FixedSparsePattern

__all__ = [
    "BinaryConv1d",
    "BinaryLinear",
    "ElasticBinarizer",
    "FixedSparsePattern",
    "HuBERT",
    "HubertConfig",
    "HubertOutput",
    "PretrainOutput",
    "binarize_weight",
    "build",
    "config",
    "names",
]
