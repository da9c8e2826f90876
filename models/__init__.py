"""The model zoo: HuBERT with five encoders of four families (one registry entry each, in
``encoders.py``), each in full precision and BiT-binarized, and each at any
weight/activation bit pair.

    import models
    models.names()                                   # the ten Table 1 models
    model = models.build("sparseformer-dn-s", attention="blocked")
    w2a2 = models.build("vanilla", weight_bits=2, activation_bits=2)
    out = model(waveforms, lengths)                  # HubertOutput
    fast = models.deploy(trained_bq_model)           # W1A1 products on packed bits
"""
import importlib

# Loaded on first use: the data tools under models.trainer (and the CLI's help) should not
# wait for torch to import.
_EXPORTS = {
    "BinaryConv1d": ".bit", "BinaryLinear": ".bit", "ElasticBinarizer": ".bit",
    "binarize_weight": ".bit", "Quantization": ".quantization", "QuantizedConv1d": ".bit",
    "QuantizedLinear": ".bit", "quantize_weight": ".bit", "HubertConfig": ".configuration",
    "EncoderFamily": ".encoders", "HuBERT": ".hubert", "HubertOutput": ".hubert",
    "PretrainOutput": ".hubert",
    "build": ".registry", "config": ".registry", "names": ".registry",
    "FixedSparsePattern": ".sparseformer", "deploy": ".deployment",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'models' has no attribute {name!r}")
