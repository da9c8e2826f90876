"""The synthetic corpus: layout, labels, splits, determinism and safe overwriting."""
import json
from pathlib import Path

import numpy as np
import pytest

from models.trainer import DataError
from models.trainer.data import synth, synth_plan
from models.trainer.data.audio import read_wav
from models.trainer.data.manifest import read_dictionary, read_labels, read_manifest
from models.trainer.data.sentences import KS_CLASSES

SMALL = synth_plan.CorpusSizes(pretrain_train=3, pretrain_valid=1, ks_per_class_train=1,
                               ks_per_class_valid=1, ks_per_class_test=1, sid_speakers=2,
                               sid_train_per_speaker=2, sid_valid_per_speaker=1,
                               sid_test_per_speaker=1, pr_train=3, pr_valid=1, pr_test=1)


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "corpus"
    metadata = synth.synthesize_corpus(out, seed=3, sizes="tiny", progress=False)
    return out, metadata


def _files(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_layout_and_metadata(tiny_corpus):
    out, metadata = tiny_corpus
    assert json.loads((out / "corpus.json").read_text()) == metadata
    assert set(metadata["tasks"]) == set(synth_plan.TASKS)
    assert all(t["preset"] == "tiny" and t["seed"] == 3 for t in metadata["tasks"].values())
    sizes = synth_plan.PRESETS["tiny"]
    expected = {
        "pretrain": {"train": sizes.pretrain_train, "valid": sizes.pretrain_valid},
        "ks": {s: 12 * n for s, n in (("train", sizes.ks_per_class_train),
                                      ("valid", sizes.ks_per_class_valid),
                                      ("test", sizes.ks_per_class_test))},
        "sid": {s: sizes.sid_speakers * n for s, n in (("train", sizes.sid_train_per_speaker),
                                                       ("valid", sizes.sid_valid_per_speaker),
                                                       ("test", sizes.sid_test_per_speaker))},
        "pr": {"train": sizes.pr_train, "valid": sizes.pr_valid, "test": sizes.pr_test},
    }
    labels = {"pretrain": ("wrd", "ltr"), "ks": ("ks",), "sid": ("sid", "wrd"),
              "pr": ("phn", "wrd")}
    for task, splits in expected.items():
        for split, count in splits.items():
            manifest = read_manifest(out / task / f"{split}.tsv")
            assert manifest.root == (out / task).resolve() and len(manifest) == count
            for index in range(count):
                assert manifest.audio_path(index).is_file()
            for suffix in labels[task]:
                read_labels(manifest.label_path(suffix), expected=count)
    assert not list(out.glob("*.partial"))


def test_audio_is_valid_16khz_and_keyword_clips_last_one_second(tiny_corpus):
    out, _ = tiny_corpus
    manifest = read_manifest(out / "ks" / "train.tsv")
    assert set(manifest.num_samples) == {16000}
    for task in ("pretrain", "sid", "pr"):
        manifest = read_manifest(out / task / "train.tsv")
        audio = read_wav(manifest.audio_path(0))
        assert audio.size == manifest.num_samples[0] > 16000 // 2
        assert 0.05 < np.max(np.abs(audio)) <= 1.0


def test_labels_and_dictionaries(tiny_corpus):
    out, _ = tiny_corpus
    assert read_dictionary(out / "ks" / "dict.ks.txt") == list(KS_CLASSES)
    ks = read_labels(out / "ks" / "train.ks")
    assert sorted(set(ks)) == sorted(KS_CLASSES)
    # Class folders match labels, so a Speech Commands-style reader would agree.
    for path, label in zip(read_manifest(out / "ks" / "train.tsv").files, ks):
        assert path.split("/")[2] == label
    speakers = read_dictionary(out / "sid" / "dict.sid.txt")
    for split in ("train", "valid", "test"):  # held-out utterances, not held-out speakers
        assert set(read_labels(out / "sid" / f"{split}.sid")) == set(speakers)
    phonemes = set(read_dictionary(out / "pr" / "dict.phn.txt"))
    for split in ("train", "valid", "test"):
        for line in read_labels(out / "pr" / f"{split}.phn"):
            assert line and set(line.split()) <= phonemes


def test_keyword_speakers_are_disjoint_across_splits():
    plans = [p for p in synth_plan.plan_corpus(seed=0, sizes="small", tasks=["ks"])
             if p.kind != "silence"]
    speakers = {split: {(p.voice, p.variant) for p in plans if p.split == split}
                for split in ("train", "valid", "test")}
    assert not speakers["train"] & speakers["test"] and not speakers["train"] & speakers["valid"]
    # Held out by accent and by variant: no test voice shares either with a training voice.
    for part in (0, 1):
        train = {voice[part] for voice in speakers["train"]}
        assert train and not train & {voice[part] for voice in speakers["test"]}
        assert not train & {voice[part] for voice in speakers["valid"]}


@pytest.mark.parametrize("preset", sorted(synth_plan.PRESETS))
def test_phoneme_test_words_and_voices_are_held_out_and_test_phonemes_trained(preset):
    plans = synth_plan.plan_corpus(seed=0, sizes=preset, tasks=["pr"])
    splits = ("train", "valid", "test")
    words = {split: {w for p in plans if p.split == split for w in p.text.split()}
             for split in splits}
    assert all(words.values())
    # Every word of a test sentence is new, "the" and "a" included.
    assert not words["test"] & words["train"] and not words["test"] & words["valid"]
    variants = {split: {p.variant for p in plans if p.split == split} for split in splits}
    assert not variants["test"] & (variants["train"] | variants["valid"])
    phonemes = {split: {ph for p in plans if p.split == split for ph in p.label.split()}
                for split in ("train", "test")}
    assert phonemes["test"] and phonemes["train"]
    if preset != "tiny":   # its 12 training sentences need not say every phoneme
        assert phonemes["test"] <= phonemes["train"], phonemes["test"] - phonemes["train"]


def test_phoneme_test_vocabulary_is_covered_by_the_training_vocabulary():
    from models.trainer.data import espeak

    said = {}
    for split, (templates, words) in synth_plan.pr_text_parts().items():
        vocabulary = {w for kind in words.values() for w in kind}
        vocabulary |= {w for t in templates for w in t.split() if not w.startswith("{")}
        said[split] = " ".join(sorted(vocabulary))
    for accent in synth_plan.PR_ACCENTS:
        test = set(espeak.phonemize(said["test"], accent))
        assert test and test <= set(espeak.phonemize(said["train"], accent)), accent


def test_default_keyword_and_speaker_test_splits_hold_about_a_thousand_items():
    # Two models 3 points apart at 90 % accuracy separate at 95 % with ~1 000 items: the
    # standard error of a difference of two proportions is sqrt(2 x 0.9 x 0.1 / n).
    plans = synth_plan.plan_corpus(seed=0, sizes="default", tasks=["ks", "sid"])
    for task in ("ks", "sid"):
        test = sum(1 for p in plans if p.task == task and p.split == "test")
        assert test >= 1000
        assert 1.96 * (2 * 0.9 * 0.1 / test) ** 0.5 < 0.03


def test_same_seed_gives_byte_identical_files(tmp_path, tiny_corpus):
    out, _ = tiny_corpus
    again = tmp_path / "again"
    synth.synthesize_corpus(again, seed=3, sizes="tiny", progress=False)
    first, second = _files(out), _files(again)
    assert first.keys() == second.keys()
    for name in first:
        a, b = first[name], second[name]
        if name.endswith(".tsv"):  # the root line names each corpus's own folder
            a, b = a.split(b"\n", 1)[1], b.split(b"\n", 1)[1]
        assert a == b, name


def test_other_seed_differs_and_workers_do_not_change_output(tmp_path):
    one = tmp_path / "one"
    synth.synthesize_corpus(one, seed=1, sizes=SMALL, tasks=["ks"], progress=False)
    two = tmp_path / "two"
    synth.synthesize_corpus(two, seed=1, sizes=SMALL, tasks=["ks"], workers=2, progress=False)
    other = tmp_path / "other"
    synth.synthesize_corpus(other, seed=2, sizes=SMALL, tasks=["ks"], progress=False)
    wavs = lambda root: {k: v for k, v in _files(root).items() if k.endswith(".wav")}
    assert wavs(one) == wavs(two)
    assert wavs(one) != wavs(other)


def test_existing_corpus_needs_overwrite_and_failures_leave_it_intact(tmp_path, monkeypatch):
    out = tmp_path / "c"
    synth.synthesize_corpus(out, seed=0, sizes=SMALL, tasks=["pr"], progress=False)
    before = _files(out / "pr")
    with pytest.raises(DataError, match="already holds a corpus"):
        synth.synthesize_corpus(out, seed=0, sizes=SMALL, tasks=["pr"], progress=False)

    calls = []

    def failing_render(plan, folder):
        calls.append(plan)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return original(plan, folder)

    original = synth._render_to_file
    monkeypatch.setattr(synth, "_render_to_file", failing_render)
    with pytest.raises(RuntimeError, match="disk full"):
        synth.synthesize_corpus(out, seed=5, sizes=SMALL, tasks=["pr"], overwrite=True,
                                progress=False)
    assert _files(out / "pr") == before          # the old task folder is untouched
    assert not (out / "corpus.json").exists()    # but no longer vouched for as complete
    monkeypatch.setattr(synth, "_render_to_file", original)
    synth.synthesize_corpus(out, seed=0, sizes=SMALL, tasks=["pr"], overwrite=True, progress=False)
    assert _files(out / "pr") == before and not list(out.glob("*.partial"))


def test_adding_a_task_keeps_the_others(tmp_path):
    out = tmp_path / "c"
    synth.synthesize_corpus(out, seed=0, sizes=SMALL, tasks=["ks"], progress=False)
    ks_files = _files(out / "ks")
    metadata = synth.synthesize_corpus(out, seed=1, sizes=SMALL, tasks=["pr"], progress=False)
    assert _files(out / "ks") == ks_files
    assert set(metadata["tasks"]) == {"ks", "pr"}
    assert metadata["tasks"]["ks"]["seed"] == 0 and metadata["tasks"]["pr"]["seed"] == 1
    assert json.loads((out / "corpus.json").read_text()) == metadata


@pytest.mark.parametrize("kwargs, message", [
    (dict(sizes="huge"), "unknown corpus size"), (dict(tasks=["asr"]), "unknown tasks"),
    (dict(seed=-1), "seed"),
])
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(DataError, match=message):
        synth.synthesize_corpus(tmp_path / "x", progress=False, **kwargs)
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="not a folder"):
        synth.synthesize_corpus(tmp_path / "file", sizes=SMALL, progress=False)
    with pytest.raises(DataError, match="positive integer"):
        synth_plan.CorpusSizes(**{**SMALL.__dict__, "pr_test": 0})


def test_loud_frames_keep_what_is_within_40_db_of_the_loudest():
    """Constant frames of amplitude 1, 0.02 (-34 dB) and 0.005 (-46 dB), and a partial frame
    dropped: 20 log10(a) against the -40 dB floor, by hand."""
    waveform = np.concatenate([np.full(4, 1.0), np.full(4, 0.02), np.full(4, 0.005),
                               np.full(2, 1.0)])
    assert synth.loud_frames(waveform, 4).tolist() == [True, True, False]
    assert synth.loud_frames(waveform, 4, floor_db=-50.0).tolist() == [True, True, True]
