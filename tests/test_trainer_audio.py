"""WAV reading/writing, validation errors, FLAC headers, manifests and the resampler."""
import struct
import wave

import numpy as np
import pytest

from models.trainer import DataError
from models.trainer.data.audio import (
    audio_info,
    flac_info,
    read_audio,
    read_wav,
    resample,
    validate_waveform,
    write_wav,
)
from models.trainer.data.manifest import (
    letters_line,
    read_dictionary,
    read_labels,
    read_manifest,
    write_dictionary,
    write_labels,
    write_manifest,
)


def _write_raw_wav(path, samples, rate=16000, channels=1, width=2):
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(np.asarray(samples).astype(f"<i{width}").tobytes())


def test_wav_round_trip_is_exact_for_16_bit_values(tmp_path):
    samples = np.array([-32768, -1, 0, 1, 12345, 32767], dtype=np.int16)
    waveform = samples.astype(np.float32) / 32768
    write_wav(tmp_path / "a.wav", waveform)
    back = read_wav(tmp_path / "a.wav")
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, waveform)
    assert audio_info(tmp_path / "a.wav") == (16000, 1, 6)


def test_write_wav_clips_and_leaves_no_temporary_files(tmp_path):
    write_wav(tmp_path / "b.wav", np.array([2.0, -2.0, 0.5], dtype=np.float32))
    np.testing.assert_allclose(read_wav(tmp_path / "b.wav"), [32767 / 32768, -1.0, 0.5])
    assert [p.name for p in tmp_path.iterdir()] == ["b.wav"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "c.wav"
    write_wav(target, np.zeros(10, dtype=np.float32))
    before = target.read_bytes()
    with pytest.raises(DataError, match="NaN"):
        write_wav(target, np.array([0.0, np.nan], dtype=np.float32))
    assert target.read_bytes() == before
    assert len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 100), np.float32), "stereo"),
    (np.zeros(0, np.float32), "no audio"),
    (np.array([0.0, np.inf], np.float32), "NaN or infinite"),
    (np.zeros(10, np.int16), "float"),
])
def test_validate_waveform_rejects_bad_audio(bad, message):
    with pytest.raises(DataError, match=message):
        validate_waveform(bad)


def test_validate_waveform_rejects_wrong_rate_and_accepts_torch():
    torch = pytest.importorskip("torch")
    with pytest.raises(DataError, match="8000 Hz"):
        validate_waveform(np.zeros(10, np.float32), 8000)
    assert validate_waveform(torch.zeros(1, 5)).shape == (5,)


def test_read_wav_errors_name_the_file(tmp_path):
    _write_raw_wav(tmp_path / "rate.wav", np.zeros(100), rate=8000)
    _write_raw_wav(tmp_path / "stereo.wav", np.zeros(200), channels=2)
    _write_raw_wav(tmp_path / "eight.wav", np.zeros(100), width=1)
    (tmp_path / "garbage.wav").write_bytes(b"this is not audio at all" * 4)
    _write_raw_wav(tmp_path / "empty.wav", np.zeros(0))
    good = tmp_path / "truncated.wav"
    _write_raw_wav(good, np.ones(1000))
    good.write_bytes(good.read_bytes()[:-500])
    cases = {"rate.wav": "8000 Hz", "stereo.wav": "2 channels", "eight.wav": "8-bit",
             "garbage.wav": "not a readable", "empty.wav": "no audio", "truncated.wav": "truncated",
             "missing.wav": "no such file"}
    for name, message in cases.items():
        with pytest.raises(DataError, match=message) as caught:
            read_wav(tmp_path / name)
        assert name in str(caught.value)
    assert issubclass(DataError, ValueError)


def _flac_header(rate=16000, channels=1, bits=16, samples=12345):
    packed = (rate << 44) | ((channels - 1) << 41) | ((bits - 1) << 36) | samples
    streaminfo = struct.pack(">HH", 4096, 4096) + b"\0" * 6 + packed.to_bytes(8, "big") + b"\0" * 16
    return b"fLaC" + bytes([0x80]) + len(streaminfo).to_bytes(3, "big") + streaminfo


def test_flac_header_is_parsed_without_a_decoder(tmp_path):
    (tmp_path / "a.flac").write_bytes(_flac_header(samples=98765) + b"frames...")
    assert flac_info(tmp_path / "a.flac") == (16000, 1, 98765)
    (tmp_path / "b.flac").write_bytes(b"RIFF" + b"\0" * 60)
    with pytest.raises(DataError, match="not a FLAC"):
        flac_info(tmp_path / "b.flac")
    (tmp_path / "c.flac").write_bytes(_flac_header(rate=44100))
    with pytest.raises(DataError, match="44100 Hz"):
        read_audio(tmp_path / "c.flac")


def test_reading_flac_without_soundfile_says_how_to_install_it(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "soundfile", None)  # import fails as if not installed
    (tmp_path / "a.flac").write_bytes(_flac_header())
    with pytest.raises(DataError, match="pip install soundfile"):
        read_audio(tmp_path / "a.flac")


def test_resampler_passes_the_band_and_removes_aliases():
    rate = 22050
    t = np.arange(2 * rate) / rate
    inner = slice(800, -800)  # away from the zero-padded edges
    for frequency in (440.0, 3000.0, 6500.0):
        out = resample(np.sin(2 * np.pi * frequency * t), rate, 16000)
        assert out.shape == (32000,)
        expected = np.sin(2 * np.pi * frequency * np.arange(out.size) / 16000)
        np.testing.assert_allclose(out[inner], expected[inner], atol=1e-4)
    # Above the new Nyquist frequency: must not fold back into the band.
    aliased = resample(np.sin(2 * np.pi * 9000.0 * t), rate, 16000)
    assert np.sqrt(np.mean(aliased[inner] ** 2)) < 1e-4
    # Unit gain at DC, and length ceil(n * new / old) for other ratios.
    np.testing.assert_allclose(resample(np.ones(4410), 44100, 16000)[100:-100], 1.0, atol=1e-5)
    assert resample(np.ones(1001), 16000, 22050).shape == (1380,)


def test_manifest_round_trip_and_relocation(tmp_path):
    corpus = tmp_path / "corpus"
    write_wav(corpus / "wav" / "a.wav", np.zeros(400, np.float32))
    write_manifest(corpus / "train.tsv", corpus, [("wav/a.wav", 400)])
    manifest = read_manifest(corpus / "train.tsv")
    assert manifest.root == corpus.resolve() and manifest.files == ("wav/a.wav",)
    assert manifest.num_samples == (400,) and manifest.label_path("km").name == "train.km"
    moved = tmp_path / "moved"
    corpus.rename(moved)
    assert read_manifest(moved / "train.tsv").root == moved  # falls back to the tsv's folder
    write_labels(moved / "train.ks", ["yes"])
    assert read_labels(moved / "train.ks", expected=1) == ["yes"]
    with pytest.raises(DataError, match="1 label lines for a manifest of 2"):
        read_labels(moved / "train.ks", expected=2)
    write_dictionary(moved / "dict.ks.txt", ["yes", "no"])
    assert read_dictionary(moved / "dict.ks.txt") == ["yes", "no"]
    assert letters_line("HELLO WORLD") == "H E L L O | W O R L D |"


@pytest.mark.parametrize("text, message", [
    ("", "empty manifest"), ("/root\n", "lists no audio"), ("/root\na.wav\n", "TAB"),
    ("/root\na.wav\tmany\n", "not an integer"),
    ("/nonexistent-root-dir\na.wav\t5\n", "does not exist"),
])
def test_malformed_manifests_raise_data_error(tmp_path, text, message):
    (tmp_path / "x.tsv").write_text(text)
    with pytest.raises(DataError, match=message):
        read_manifest(tmp_path / "x.tsv")
