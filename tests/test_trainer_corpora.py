"""Manifests for real corpus layouts (LibriSpeech, Speech Commands), built from tiny fakes."""
import struct
import wave

import numpy as np
import pytest

from models.trainer import DataError
from models.trainer.data.audio import write_wav
from models.trainer.data.corpora import prepare_librispeech, prepare_speech_commands
from models.trainer.data.datasets import ClassificationDataset
from models.trainer.data.manifest import read_dictionary, read_labels, read_manifest
from models.trainer.data.sentences import KS_CLASSES


def _flac(path, samples, rate=16000, channels=1):
    """A FLAC file with a valid STREAMINFO block (manifests read headers only)."""
    packed = (rate << 44) | ((channels - 1) << 41) | (15 << 36) | samples
    info = struct.pack(">HH", 4096, 4096) + b"\0" * 6 + packed.to_bytes(8, "big") + b"\0" * 16
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"fLaC" + bytes([0x80]) + len(info).to_bytes(3, "big") + info + b"\xff\xf8")


def _librispeech(root):
    for speaker, chapter, utterances in (("19", "198", 3), ("103", "1240", 2)):
        folder = root / "train-clean-100" / speaker / chapter
        lines = []
        for index in range(utterances):
            utterance = f"{speaker}-{chapter}-{index:04d}"
            _flac(folder / f"{utterance}.flac", 16000 + 100 * index)
            lines.append(f"{utterance} HELLO WORLD NUMBER {index}")
        (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")


def test_librispeech_manifest(tmp_path):
    root = tmp_path / "LibriSpeech"
    _librispeech(root)
    written = prepare_librispeech(root, tmp_path / "out", progress=False)
    manifest = read_manifest(written["train-clean-100"])
    assert len(manifest) == 5 and manifest.root == root.resolve()
    assert manifest.files[0] == "train-clean-100/103/1240/103-1240-0000.flac"  # sorted by id
    assert manifest.audio_path(0).is_file() and manifest.num_samples[0] == 16000
    assert read_labels(tmp_path / "out" / "train-clean-100.wrd")[0] == "HELLO WORLD NUMBER 0"
    assert read_labels(tmp_path / "out" / "train-clean-100.ltr")[0].endswith("| 0 |")
    # A subset folder works as root too.
    assert "train-clean-100" in prepare_librispeech(root / "train-clean-100", tmp_path / "o2",
                                                    progress=False)


def test_librispeech_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        prepare_librispeech(tmp_path / "nowhere", tmp_path / "out", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no LibriSpeech transcripts"):
        prepare_librispeech(tmp_path / "empty", tmp_path / "out", progress=False)
    root = tmp_path / "LibriSpeech"
    _librispeech(root)
    with pytest.raises(DataError, match="not found"):
        prepare_librispeech(root, tmp_path / "out", subsets=["dev-clean"], progress=False)
    _flac(root / "train-clean-100" / "19" / "198" / "19-198-0001.flac", 999, rate=8000)
    with pytest.raises(DataError, match="19-198-0001.flac: sample rate 8000"):
        prepare_librispeech(root, tmp_path / "out", progress=False)
    (root / "train-clean-100" / "19" / "198" / "19-198-0001.flac").unlink()
    with pytest.raises(DataError, match="19-198-0001.flac is missing"):
        prepare_librispeech(root, tmp_path / "out", progress=False)


def _speech_commands(root, words=("yes", "no", "cat", "dog"), per_word=4):
    rng = np.random.default_rng(0)
    for word in words:
        for index in range(per_word):
            write_wav(root / word / f"spk{index}_nohash_0.wav",
                      rng.uniform(-0.1, 0.1, 16000 - 1000 * (index % 2)).astype(np.float32))
    write_wav(root / "_background_noise_" / "white_noise.wav",
              rng.uniform(-0.5, 0.5, 48000).astype(np.float32))
    (root / "validation_list.txt").write_text("yes/spk1_nohash_0.wav\ncat/spk1_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("no/spk2_nohash_0.wav\ndog/spk2_nohash_0.wav\n")


def test_speech_commands_manifests(tmp_path):
    root = tmp_path / "speech_commands_v0.02"
    _speech_commands(root)
    out = tmp_path / "ks"
    written = prepare_speech_commands(root, out, seed=0, progress=False)
    assert set(written) == {"train", "valid", "test"}
    assert read_dictionary(out / "dict.ks.txt") == list(KS_CLASSES)
    train = read_manifest(written["train"])
    labels = read_labels(out / "train.ks", expected=len(train))
    # 12 word clips (yes/no x3, cat/dog x3 as _unknown_) + silence of a mean keyword class.
    assert labels.count("yes") == 3 and labels.count("_unknown_") == 6
    assert labels.count("_silence_") == round(np.mean([3, 3] + [0] * 8))
    assert read_labels(out / "valid.ks") == ["_unknown_", "yes", "_silence_"]  # folder order
    for index in range(len(train)):
        assert train.audio_path(index).is_file()
    dataset = ClassificationDataset(written["test"], "ks")
    assert [dataset.vocabulary.symbols[dataset[i]["target"]] for i in range(len(dataset))] == \
        ["_unknown_", "no", "_silence_"]
    again = tmp_path / "ks2"
    prepare_speech_commands(root, again, seed=0, progress=False)
    assert (out / "_silence_" / "train" / "silence-train-00000.wav").read_bytes() == \
        (again / "_silence_" / "train" / "silence-train-00000.wav").read_bytes()


def test_speech_commands_separate_test_set(tmp_path):
    root = tmp_path / "sc"
    _speech_commands(root)
    test_root = tmp_path / "sc_test"
    write_wav(test_root / "yes" / "a.wav", np.zeros(16000, np.float32))
    write_wav(test_root / "_silence_" / "b.wav", np.zeros(16000, np.float32))
    write_wav(test_root / "_unknown_" / "c.wav", np.zeros(16000, np.float32))
    prepare_speech_commands(root, tmp_path / "out", test_root=test_root, progress=False)
    assert read_labels(tmp_path / "out" / "test.ks") == ["_silence_", "_unknown_", "yes"]
    # The clips of testing_list.txt stay out of training when a separate test set is used
    # (their speakers are the test set's); asked for, they train.
    assert read_labels(tmp_path / "out" / "train.ks").count("no") == 3
    prepare_speech_commands(root, tmp_path / "out2", test_root=test_root, progress=False,
                            train_on_testing_list=True)
    assert read_labels(tmp_path / "out2" / "train.ks").count("no") == 4


def test_speech_commands_errors(tmp_path):
    root = tmp_path / "sc"
    _speech_commands(root)
    (root / "testing_list.txt").unlink()
    with pytest.raises(DataError, match="testing_list.txt: missing"):
        prepare_speech_commands(root, tmp_path / "out", progress=False)
    (root / "testing_list.txt").write_text("")
    with wave.open(str(root / "yes" / "spk0_nohash_0.wav"), "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(16000)
        writer.writeframes(b"\0" * 400)
    with pytest.raises(DataError, match="spk0_nohash_0.wav: 2 channels"):
        prepare_speech_commands(root, tmp_path / "out", progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "validation_list.txt").write_text("")
    (empty / "testing_list.txt").write_text("")
    with pytest.raises(DataError, match="no word folders"):
        prepare_speech_commands(empty, tmp_path / "out2", progress=False)
