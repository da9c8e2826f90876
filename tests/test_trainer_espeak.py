"""The espeak-ng ctypes wrapper: audio, phonemes, voices, determinism and errors."""
import numpy as np
import pytest

from models.trainer import DataError
from models.trainer.data import espeak


def test_synthesize_returns_16khz_speech():
    audio = espeak.synthesize("yes", "en-us", variant="m3")
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 0.2 < audio.size / 16000 < 1.5
    assert 0.05 < np.max(np.abs(audio)) <= 1.0


def test_synthesis_is_repeatable_and_seed_and_rate_matter():
    first = espeak.synthesize("one two three", "en-gb", variant="f2", seed=7)
    # Another call in between must not change the next result (fresh engine per call).
    espeak.synthesize("something else entirely", "en-us", variant="klatt", seed=1)
    again = espeak.synthesize("one two three", "en-gb", variant="f2", seed=7)
    np.testing.assert_array_equal(first, again)
    slower = espeak.synthesize("one two three", "en-gb", variant="f2", seed=7, rate=100)
    assert slower.size > 1.3 * first.size


def test_phonemize_gives_ipa_phonemes():
    assert espeak.phonemize("yes", "en-us") == ["j", "ɛ", "s"]
    with_words = espeak.phonemize("go, stop", "en-us", word_separator="|")
    assert with_words[with_words.index("|") - 1] == "oʊ" and "|" in with_words
    assert all("ˈ" not in p for p in espeak.phonemize("hello world", "en-gb"))


def test_voice_lists():
    languages = {v.language for v in espeak.list_voices()}
    assert {"en-us", "en-gb"} <= languages
    assert {"m1", "f2", "klatt"} <= set(espeak.list_variants())
    assert espeak.espeak_version()


@pytest.mark.parametrize("kwargs, message", [
    (dict(text="hi", voice="xx-nonexistent"), "unknown espeak-ng voice"),
    (dict(text="hi", voice="en-us", variant="nope"), "unknown espeak-ng voice variant"),
    (dict(text="hi", voice="en-us+m1"), "variants go in"),
    (dict(text="  ", voice="en-us"), "nothing to speak"),
    (dict(text="hi", voice="en-us", rate=5000), "rate must be"),
    (dict(text="hi", voice="en-us", pitch=-1), "pitch must be"),
])
def test_bad_arguments_raise_data_errors(kwargs, message):
    with pytest.raises(DataError, match=message):
        espeak.synthesize(**kwargs)


def test_missing_library_is_a_clear_error(monkeypatch):
    import espeakng_loader
    monkeypatch.setattr(espeakng_loader, "get_library_path", lambda: "/nonexistent/libespeak-ng.so")
    with pytest.raises(espeak.EspeakError, match="library not found"):
        espeak.synthesize("hi")
