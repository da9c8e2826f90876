"""The paper layer's storage of the zoo builds (profiler.paper_storage) and its precision
labels and float widths (profiler.conventions), which the zoo config no longer carries."""
import pytest

import models
from models.quantization import FULL_PRECISION, W1A1
from profiler.bits import model_storage_bits as storage_bits
from profiler.conventions import get_convention, paper_float_bits, precision_label
from profiler.paper_storage import paper_build, storage_rows

TEN = models.names()

TABLE1_STORAGE_MB = {
    "vanilla": 184.42, "conformer-s": 131.87, "squeezeformer-xs": 132.04,
    "sparseformer-dn-s": 60.81, "sparseformer-sw-s": 117.18,
    "bq-vanilla": 25.23, "bq-conformer-s": 12.88, "bq-squeezeformer-xs": 13.05,
    "bq-sparseformer-dn-s": 12.10, "bq-sparseformer-sw-s": 19.71,
}


@pytest.mark.parametrize("name", TEN)
def test_storage_matches_table1(name):
    """Parameter bits / 8 (binary weights at 1 bit plus their float scales), the vanilla
    rows at 16-bit floats: within 2 % of Table 1 for full precision, 10 % for BQ rows."""
    megabytes = storage_bits(paper_build(name)) / 8 / 1e6
    tolerance = 0.10 if name.startswith("bq-") else 0.02
    assert megabytes == pytest.approx(TABLE1_STORAGE_MB[name], rel=tolerance)


def test_vanilla_storage_closed_form():
    # every parameter at 2 bytes (FP16)
    params = sum(p.numel() for p in models.build("vanilla", device="meta").parameters())
    assert storage_bits(paper_build("vanilla")) == 16 * params


def test_binarized_storage_closed_form_for_one_linear():
    layer = models.BinaryLinear(768, 3072)
    bits = storage_bits(layer)
    # weight at 1 bit, bias and input offset and alpha at 32 bits, one 32-bit weight scale
    assert bits == 768 * 3072 + 32 * (3072 + 768 + 1) + 32


def test_storage_rows_put_the_paper_figures_beside_ours():
    rows = {row["model"]: row for row in storage_rows(layers=1)}
    assert list(rows) == TEN
    assert rows["sparseformer-sw-s"]["paper_mb"] == TABLE1_STORAGE_MB["sparseformer-sw-s"]
    assert (rows["vanilla"]["float_bits"], rows["conformer-s"]["float_bits"]) == (16, 32)


def test_paper_float_bits_and_precision_labels():
    # Table 1: both vanilla rows FP16, every other row FP32.
    assert [paper_float_bits(name) for name in TEN] == [16, 32, 32, 32, 32, 16, 32, 32, 32, 32]
    assert precision_label(FULL_PRECISION, 32) == "FP32"
    assert precision_label(W1A1, 16) == "FP16-W1A1"
    assert get_convention("paper").float_bits("bq-vanilla") == 16
    assert get_convention("bayesian-bits").float_bits("bq-vanilla") == 32


def test_a_shared_parameter_is_stored_once():
    """Two Linear layers holding one weight tensor: 16 x 8 float32 weights once, and two
    biases of 16 (the analyzer's own rule; the paper layer summed the weight twice)."""
    import torch

    first, second = torch.nn.Linear(8, 16), torch.nn.Linear(8, 16)
    second.weight = first.weight
    assert storage_bits(torch.nn.Sequential(first, second)) == 32 * (16 * 8 + 16 + 16)
