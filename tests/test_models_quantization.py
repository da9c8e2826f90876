"""The one weight/activation bit-pair type: parsed from and written as ``W<bits>A<bits>``."""
import pytest

from models.quantization import FULL_PRECISION, FULL_PRECISION_BITS, W1A1, Quantization


def test_a_label_parses_to_its_bit_pair_and_back():
    assert Quantization.parse("W1A4") == Quantization(1, 4)
    assert Quantization.parse(" w2a32 ") == Quantization(2, 32)
    assert Quantization.parse("W32A32") == FULL_PRECISION
    assert Quantization(1, 1) == W1A1
    for label in ("W1A1", "W1A4", "W4A8", "W32A1", "W32A32"):
        assert Quantization.parse(label).label == label
    assert Quantization(8, 2, "learned").label == "W8A2"


def test_full_precision_is_32_bits_on_both_sides():
    assert FULL_PRECISION_BITS == 32
    assert Quantization.parse("W32A32").full_precision
    assert not Quantization.parse("W32A32").quantized
    w2a32 = Quantization.parse("W2A32")
    assert (w2a32.weights_quantized, w2a32.activations_quantized, w2a32.full_precision) == (
        True, False, False)
    w32a1 = Quantization.parse("W32A1")
    assert (w32a1.weights_quantized, w32a1.activations_quantized) == (False, True)


@pytest.mark.parametrize("text", ["", "X1", "W1", "A1W1", "W1A", "WA1", "W1A1A1", "W-1A1",
                                  "W1.5A1", "W1 A1", "FP32-W1A1"])
def test_a_label_not_of_the_form_is_refused_with_the_form(text):
    with pytest.raises(ValueError, match=r"expected W<bits>A<bits>, e.g. W1A1 or W32A32"):
        Quantization.parse(text)


@pytest.mark.parametrize("text, field, value", [
    ("W0A1", "weight_bits", 0), ("W33A1", "weight_bits", 33), ("W1A0", "activation_bits", 0),
    ("W1A99", "activation_bits", 99)])
def test_bits_out_of_range_are_refused_with_the_range(text, field, value):
    with pytest.raises(ValueError, match=rf"precision '{text}': {field} must be a whole number "
                                         rf"from 1 to 32 \(32 = full precision\), got {value}"):
        Quantization.parse(text)
