"""SUPERB task folders from real corpus layouts (models.trainer.superb.real_corpora), each built
from a tiny fake of the corpus's layout; the expected manifests are worked out by hand below."""
import json
import shutil
import subprocess

import numpy as np
import pytest
from train_fixtures import TINY_MODEL, TINY_OVERRIDE_ARGS, write_wav

from models.trainer import DataError
from models.trainer.data.manifest import read_dictionary, read_labels, read_manifest
from models.trainer.superb import real_corpora as real

RATE = 16000


def _wav(path, seconds=0.5, seed=0, rate=RATE):
    rng = np.random.default_rng(seed)
    return write_wav(path, rng.uniform(-0.3, 0.3, int(seconds * rate)), rate=rate)


def _lines(path):
    return path.read_text().splitlines()


def _manifest(folder, split):
    manifest = read_manifest(folder / f"{split}.tsv")
    assert all(manifest.audio_path(i).is_file() for i in range(len(manifest)))
    return manifest


def _superb(cli, task, data, out):
    # One thread: the recurrent heads (ASR) run many times slower on two contended ones.
    result = cli("superb", "--task", task, "--random-init", TINY_MODEL, *TINY_OVERRIDE_ARGS,
                 "--data", data, "--out", out, "--steps", "2", "--eval-every", "1", "--quiet",
                 env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


# ------------------------------------------------------------------ LibriSpeech: asr, pr
LIBRISPEECH = {   # subset -> speaker, chapter, transcripts (utterances 0000, 0001, ...)
    "train-clean-100": [("19", "198", ["A CAT RAN", "THE WORLD"]),
                        ("103", "1240", ["THE CAT SAT", "THE DOG RAN"])],
    "dev-clean": [("84", "121123", ["HELLO WORLD", "A DOG SAT"])],
    "test-clean": [("61", "70968", ["THE CAT SAT", "A DOG"])],
}
LEXICON = "THE DH AH0\nCAT\tK AE1 T\nSAT S AE1 T\nDOG D AO1 G\nRAN R AE1 N\nA AH0\n" \
          "THE DH IY0\n"         # listed twice: the first pronunciation counts
MORE_LEXICON = "cat K AA1 T\nWORLD W ER1 L D\nHELLO HH AH0 L OW1\nDON'T D OW1 N T\n"


def _librispeech(tmp_path):
    import soundfile

    root = tmp_path / "LibriSpeech"
    for subset, chapters in LIBRISPEECH.items():
        for speaker, chapter, texts in chapters:
            folder = root / subset / speaker / chapter
            folder.mkdir(parents=True)
            lines = []
            for index, text in enumerate(texts):
                utterance = f"{speaker}-{chapter}-{index:04d}"
                rng = np.random.default_rng(len(lines) + int(speaker))
                soundfile.write(folder / f"{utterance}.flac",
                                rng.uniform(-0.3, 0.3, RATE + 1600 * index), RATE,
                                subtype="PCM_16")
                lines.append(f"{utterance} {text}\n")
            (folder / f"{speaker}-{chapter}.trans.txt").write_text("".join(lines))
    lexicons = [tmp_path / "lexicon.txt", tmp_path / "more-lexicon.txt"]
    for path, text in zip(lexicons, (LEXICON, MORE_LEXICON)):
        path.write_text(text)
    return root, lexicons


def test_librispeech_asr_and_pr_folders(tmp_path):
    root, lexicons = _librispeech(tmp_path)
    written = real.prepare_librispeech_tasks(root, tmp_path / "data", lexicon=lexicons,
                                             progress=False)
    assert written == {"asr": tmp_path / "data" / "asr", "pr": tmp_path / "data" / "pr"}
    train_files = ["train-clean-100/103/1240/103-1240-0000.flac",     # sorted by utterance id
                   "train-clean-100/103/1240/103-1240-0001.flac",
                   "train-clean-100/19/198/19-198-0000.flac",
                   "train-clean-100/19/198/19-198-0001.flac"]
    for folder in written.values():
        train, valid, test = (_manifest(folder, s) for s in ("train", "valid", "test"))
        assert train.root == valid.root == test.root == root.resolve()   # nothing copied
        assert list(train.files) == train_files
        assert train.num_samples == (16000, 17600, 16000, 17600)
        assert list(valid.files) == ["dev-clean/84/121123/84-121123-0000.flac",
                                     "dev-clean/84/121123/84-121123-0001.flac"]
        assert list(test.files) == ["test-clean/61/70968/61-70968-0000.flac",
                                    "test-clean/61/70968/61-70968-0001.flac"]
        assert read_labels(folder / "train.wrd") == ["THE CAT SAT", "THE DOG RAN", "A CAT RAN",
                                                     "THE WORLD"]
        assert read_labels(folder / "test.wrd") == ["THE CAT SAT", "A DOG"]
    asr, pr = written["asr"], written["pr"]
    assert read_labels(asr / "valid.ltr") == ["H E L L O | W O R L D |", "A | D O G | S A T |"]
    letters = dict(line.split() for line in _lines(asr / "dict.ltr.txt"))
    assert set(letters) == set("ACDEGHLNORSTW|") and letters["|"] == "21"   # 21 words
    assert read_labels(pr / "train.phn") == ["DH AH0 K AE1 T S AE1 T", "DH AH0 D AO1 G R AE1 N",
                                             "AH0 K AE1 T R AE1 N", "DH AH0 W ER1 L D"]
    assert read_labels(pr / "valid.phn") == ["HH AH0 L OW1 W ER1 L D", "AH0 D AO1 G S AE1 T"]
    assert read_labels(pr / "test.phn") == ["DH AH0 K AE1 T S AE1 T", "AH0 D AO1 G"]
    # Counted over the three splits (56 phonemes), most frequent first, ties by name.
    assert _lines(pr / "dict.phn.txt") == [
        "AE1 8", "AH0 8", "T 6", "D 5", "DH 4", "AO1 3", "G 3", "K 3", "L 3", "S 3", "ER1 2",
        "N 2", "R 2", "W 2", "HH 1", "OW1 1"]
    assert not list((tmp_path / "data").glob("*.partial"))


def test_librispeech_asr_and_pr_run_superb_end_to_end(cli, tmp_path):
    root, lexicons = _librispeech(tmp_path)
    made = cli("data", "librispeech-tasks", "--root", root, "--out", tmp_path / "data",
               "--lexicon", *lexicons, "--quiet")
    assert made.returncode == 0, made.stderr[-2000:]
    assert made.stdout.splitlines() == [f"asr: {tmp_path / 'data' / 'asr'}",
                                        f"pr: {tmp_path / 'data' / 'pr'}"]
    asr = _superb(cli, "asr", tmp_path / "data", tmp_path / "run-asr")
    assert asr["data"]["utterances"] == {"train": 4, "valid": 2, "test": 2}
    # Answering 'THE' (3 of the 11 training words): 'THE CAT SAT' 2 deletions, 'A DOG' 1
    # substitution and 1 deletion: 4 errors in 5 words.
    assert asr["chance"] == pytest.approx(4 / 5)
    pr = _superb(cli, "pr", tmp_path / "data", tmp_path / "run-pr")
    assert pr["data"]["utterances"] == {"train": 4, "valid": 2, "test": 2}
    # Answering 'AE1' (5 of the 29 training phonemes): 7 edits for the 8 phonemes of the first
    # test sentence, 4 for the 4 of 'A DOG'.
    assert pr["chance"] == pytest.approx(11 / 12)


def test_librispeech_bad_input_is_one_line_and_exit_2(cli, tmp_path):
    root, lexicons = _librispeech(tmp_path)
    malformed, partial = tmp_path / "malformed.txt", tmp_path / "partial.txt"
    malformed.write_text("THE DH AH0\n\nWORLD\n")
    partial.write_text("THE DH AH0\nCAT K AE1 T\nA AH0\nRAN R AE1 N\nWORLD W ER1 L D\n"
                       "HELLO HH AH0 L OW1\n")
    out = tmp_path / "data"
    cases = [
        (("--lexicon", *lexicons, "--root", tmp_path / "nowhere"),
         "nowhere: LibriSpeech folder does not exist"),
        ((), "the pr task needs a lexicon (--lexicon FILE"),
        (("--lexicon", malformed), "malformed.txt:3: expected 'WORD PHONEME PHONEME ...', got "
                                   "'WORLD'"),
        (("--lexicon", tmp_path / "none.txt"), "none.txt: missing (a lexicon"),
        (("--lexicon", partial), "2 words of the transcripts are not in the lexicon, e.g. SAT "
                                 "(103-1240-0000), DOG (103-1240-0001); add them"),
    ]
    for arguments, needle in cases:
        if "--root" not in arguments:
            arguments = ("--root", root, *arguments)
        result = cli("data", "librispeech-tasks", *arguments, "--out", out, "--quiet")
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
        assert lines[0].startswith("profile-encoder: error:") and needle in lines[0], lines
    assert not out.exists() or not list(out.iterdir())    # nothing written, not even asr
    shutil.rmtree(root / "dev-clean")
    result = cli("data", "librispeech-tasks", "--root", root, "--tasks", "asr", "--out", out,
                 "--quiet")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "dev-clean: LibriSpeech dev-clean (SUPERB's valid split" in result.stderr
    assert not out.exists() or not list(out.iterdir())


def test_librispeech_asr_alone_needs_no_lexicon_and_keeps_what_exists(tmp_path):
    root, _ = _librispeech(tmp_path)
    assert list(real.prepare_librispeech_tasks(root, tmp_path / "data", tasks=["asr"],
                                               progress=False)) == ["asr"]
    assert not (tmp_path / "data" / "pr").exists()
    with pytest.raises(DataError, match="asr: already exists; pass --force"):
        real.prepare_librispeech_tasks(root, tmp_path / "data", tasks=["asr"], progress=False)
    with pytest.raises(DataError, match="serves the tasks asr and pr, not \\['ks'\\]"):
        real.prepare_librispeech_tasks(root, tmp_path / "data", tasks=["ks"], progress=False)


def test_librispeech_full_scale_data_folder_feeds_a_study(cli, tmp_path):
    """The README's full-scale data folder: pretrain/ from `data librispeech` joined by its
    shell lines (two training subsets here, three there), asr/ and pr/ from `data
    librispeech-tasks`; a smoke study pre-trains on pretrain/ and evaluates on the tasks."""
    root, lexicons = _librispeech(tmp_path)
    shutil.copytree(root / "train-clean-100", root / "train-other-500")
    data = tmp_path / "superb"
    made = cli("data", "librispeech", "--root", root, "--out", data / "pretrain", "--quiet",
               "--subsets", "train-clean-100", "train-other-500", "dev-clean")
    assert made.returncode == 0, made.stderr[-2000:]
    join = """{ head -1 train-clean-100.tsv
    for s in train-clean-100 train-other-500; do tail -n +2 $s.tsv; done
  } > train.tsv
  cp dev-clean.tsv valid.tsv"""
    subprocess.run(["bash", "-c", join], cwd=data / "pretrain", check=True)
    made = cli("data", "librispeech-tasks", "--root", root, "--out", data, "--lexicon",
               *lexicons, "--quiet")
    assert made.returncode == 0, made.stderr[-2000:]
    study = tmp_path / "study"
    ran = cli("study", "--out", study, "--data", data, "--preset", "smoke", "--models",
              TINY_MODEL, "--seeds", "1", "--tasks", "asr,pr", "--quiet",
              env={"OMP_NUM_THREADS": "1"})
    assert ran.returncode == 0, ran.stderr[-3000:]
    seed = study / "runs" / TINY_MODEL / "seed-0"
    metadata = json.loads((seed / "fp" / "metadata.json").read_text())
    assert metadata["pretrain_folder"] == str((data / "pretrain").resolve())
    assert metadata["utterances"] == {"train": 8, "valid": 2}    # 4 + 4 joined; dev-clean
    for task in ("asr", "pr"):
        results = json.loads((seed / "superb" / "bq" / task / "results.json").read_text())
        assert results["data"]["folder"] == str(data.resolve())
        assert results["data"]["utterances"] == {"train": 4, "valid": 2, "test": 2}
    # Its report keeps the folder's description, so a fresh study folder on the same
    # corpus restores the finished runs instead of training them again.
    reports = tmp_path / "reports"
    made = cli("study", "--out", study, "--data", data, "--report", "--reports", reports)
    assert made.returncode == 0, made.stderr[-2000:]
    described = json.loads((reports / "corpus.json").read_text())
    assert sorted(described["tasks"]) == ["asr", "pr", "pretrain"]
    assert described["tasks"]["pretrain"]["splits"]["train"]["utterances"] == 8
    planned = cli("study", "--out", tmp_path / "again", "--data", data, "--preset", "smoke",
                  "--models", TINY_MODEL, "--seeds", "1", "--tasks", "asr,pr",
                  "--restore-from", reports, "--dry-run")
    assert planned.returncode == 0, planned.stderr[-2000:]
    assert "0 left" in planned.stdout and "files of finished runs" in planned.stdout, \
        planned.stdout
    (data / "pr" / "test.phn").write_text("AH\nAH\n")     # another corpus now
    refused = cli("study", "--out", tmp_path / "again", "--data", data, "--preset", "smoke",
                  "--models", TINY_MODEL, "--seeds", "1", "--tasks", "asr,pr",
                  "--restore-from", reports, "--dry-run")
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1 and "the pr corpus differs" in lines[0]


# ----------------------------------------------------------------- Speech Commands v0.01
def _speech_commands_v1(tmp_path):
    root, test_root = tmp_path / "speech_commands_v0.01", tmp_path / "speech_commands_test_set"
    for seed, word in enumerate(("yes", "no", "cat")):
        for speaker in range(3):
            _wav(root / word / f"spk{speaker}_nohash_0.wav", seed=10 * seed + speaker)
    _wav(root / "_background_noise_" / "white_noise.wav", seconds=3.0)
    (root / "validation_list.txt").write_text("yes/spk1_nohash_0.wav\ncat/spk1_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("no/spk2_nohash_0.wav\ncat/spk2_nohash_0.wav\n")
    for folder in ("yes", "_silence_", "_unknown_"):
        _wav(test_root / folder / "clip.wav", seed=7)
    return root, test_root


def test_speech_commands_v1_follows_superb_splits(tmp_path):
    root, test_root = _speech_commands_v1(tmp_path)
    folder = real.prepare_speech_commands_v1(root, test_root, tmp_path / "data", progress=False)
    assert folder == tmp_path / "data" / "ks" and not (tmp_path / "data" / "ks.partial").exists()
    train, valid, test = (_manifest(folder, s) for s in ("train", "valid", "test"))
    # Word folders in name order (cat, no, yes); testing_list.txt clips are in no split; one
    # _silence_ clip per split (the mean keyword count, 0.4 and 0.1, rounds to 0; at least 1).
    assert list(train.files[:5]) == ["audio/cat/spk0_nohash_0.wav", "audio/no/spk0_nohash_0.wav",
                                     "audio/no/spk1_nohash_0.wav", "audio/yes/spk0_nohash_0.wav",
                                     "audio/yes/spk2_nohash_0.wav"]
    assert read_labels(folder / "train.ks") == ["_unknown_", "no", "no", "yes", "yes",
                                                "_silence_"]
    assert list(valid.files[:2]) == ["audio/cat/spk1_nohash_0.wav", "audio/yes/spk1_nohash_0.wav"]
    assert read_labels(folder / "valid.ks") == ["_unknown_", "yes", "_silence_"]
    assert list(test.files) == ["test_audio/_silence_/clip.wav", "test_audio/_unknown_/clip.wav",
                                "test_audio/yes/clip.wav"]
    assert read_labels(folder / "test.ks") == ["_silence_", "_unknown_", "yes"]
    assert train.root == valid.root == folder.resolve()     # not the staging folder
    assert train.num_samples[0] == 8000 and train.num_samples[-1] == RATE


def test_speech_commands_v1_runs_superb_end_to_end(cli, tmp_path):
    root, test_root = _speech_commands_v1(tmp_path)
    made = cli("data", "speechcommands-v0.01", "--root", root, "--test-root", test_root,
               "--out", tmp_path / "data", "--quiet")
    assert made.returncode == 0, made.stderr[-2000:]
    assert made.stdout.strip() == f"ks: {tmp_path / 'data' / 'ks'}"
    results = _superb(cli, "ks", tmp_path / "data", tmp_path / "run")
    assert results["task"] == "ks" and results["data"]["utterances"] == \
        {"train": 6, "valid": 3, "test": 3}


# ----------------------------------------------------------------------------- VoxCeleb1
def _voxceleb1(root):
    dev = {"id10001": [("vidA", 1, 2.0), ("vidA", 2, 2.0), ("vidB", 1, 2.5)],
           "id10002": [("vidC", 1, 2.0), ("vidC", 2, 1.0)],
           "id10003": [("vidD", 1, 2.0), ("vidD", 2, 2.0)],
           "id10004": [("vidE", 1, 2.0), ("vidE", 2, 2.0)]}
    test = {"id10270": [("vidX", 1, 1.0), ("vidX", 2, 1.0)], "id10271": [("vidY", 1, 1.0)]}
    for part, speakers in (("dev", dev), ("test", test)):
        for speaker, files in speakers.items():
            for video, number, seconds in files:
                _wav(root / part / "wav" / speaker / video / f"{number:05d}.wav", seconds)
    (root / "iden_split.txt").write_text(
        "1 id10001/vidA/00001.wav\n1 id10002/vidC/00001.wav\n2 id10001/vidA/00002.wav\n"
        "3 id10001/vidB/00001.wav\n3 id10270/vidX/00001.wav\n1 id10270/vidX/00002.wav\n")
    (root / "veri_test2.txt").write_text(
        "1 id10270/vidX/00001.wav id10270/vidX/00002.wav\n"
        "0 id10270/vidX/00001.wav id10271/vidY/00001.wav\n")


def test_voxceleb1_identification_split(tmp_path):
    root = tmp_path / "VoxCeleb1"
    _voxceleb1(root)
    folder = real.prepare_voxceleb1(root, tmp_path / "data", tasks=["sid"],
                                    progress=False)["sid"]
    assert not (tmp_path / "data" / "asv").exists()
    train, valid, test = (_manifest(folder, s) for s in ("train", "valid", "test"))
    assert train.root == root.resolve()
    assert list(train.files) == ["dev/wav/id10001/vidA/00001.wav",
                                 "dev/wav/id10002/vidC/00001.wav",
                                 "test/wav/id10270/vidX/00002.wav"]
    assert read_labels(folder / "train.sid") == ["id10001", "id10002", "id10270"]
    assert list(valid.files) == ["dev/wav/id10001/vidA/00002.wav"]
    assert list(test.files) == ["dev/wav/id10001/vidB/00001.wav",
                                "test/wav/id10270/vidX/00001.wav"]
    assert read_labels(folder / "test.sid") == ["id10001", "id10270"]
    assert read_dictionary(folder / "dict.sid.txt") == ["id10001", "id10002", "id10270"]
    assert test.num_samples == (40000, 16000)


def test_voxceleb1_verification_trials(tmp_path):
    root = tmp_path / "VoxCeleb1"
    _voxceleb1(root)
    folder = real.prepare_voxceleb1(root, tmp_path / "data", tasks=["asv"], valid_speakers=2,
                                    valid_trials=4, progress=False)["asv"]
    test = _manifest(folder, "test")
    assert list(test.files) == ["test/wav/id10270/vidX/00001.wav",
                                "test/wav/id10270/vidX/00002.wav",
                                "test/wav/id10271/vidY/00001.wav"]
    assert _lines(folder / "test.trials") == [
        "1 test/wav/id10270/vidX/00001.wav test/wav/id10270/vidX/00002.wav",
        "0 test/wav/id10270/vidX/00001.wav test/wav/id10271/vidY/00001.wav"]
    # Train and valid: the four dev speakers (never the trials' speakers), two held out.
    valid, train = _manifest(folder, "valid"), _manifest(folder, "train")
    held_out = set(read_labels(folder / "valid.spk"))
    assert len(held_out) == 2 and held_out < {"id10001", "id10002", "id10003", "id10004"}
    everything = {"id10001": ["vidA/00001.wav", "vidA/00002.wav", "vidB/00001.wav"],
                  "id10002": ["vidC/00001.wav", "vidC/00002.wav"],
                  "id10003": ["vidD/00001.wav", "vidD/00002.wav"],
                  "id10004": ["vidE/00001.wav", "vidE/00002.wav"]}
    files = {s: [f"dev/wav/{s}/{name}" for name in names] for s, names in everything.items()}
    assert list(valid.files) == [f for s in sorted(held_out) for f in files[s]]
    # id10002/vidC/00002.wav lasts 1 s: under s3prl's 2 s minimum for training.
    assert list(train.files) == [f for s in sorted(set(files) - held_out) for f in files[s]
                                 if f != "dev/wav/id10002/vidC/00002.wav"]
    assert read_dictionary(folder / "dict.spk.txt") == sorted(set(files) - held_out)
    trials = [line.split() for line in _lines(folder / "valid.trials")]
    assert len(trials) == 4 and sum(label == "1" for label, *_ in trials) == 2
    for label, first, second in trials:
        assert first in valid.files and second in valid.files and first < second
        assert label == str(int(first.split("/")[2] == second.split("/")[2]))


# --------------------------------------------------------------- Fluent Speech Commands
def _fluent_speech_commands(root):
    header = ",path,speakerId,transcription,action,object,location\n"
    rows = {"train": [("spkA", "u1", "Turn on the lights", "activate", "lights", "none"),
                      ("spkA", "u2", "Switch to Korean", "change language", "Korean", "none"),
                      ("spkB", "u3", "Heat up the kitchen", "increase", "heat", "kitchen"),
                      ("spkB", "u4", "Lights off", "deactivate", "lights", "none")],
            "valid": [("spkC", "u5", "Lights on", "activate", "lights", "none"),
                      ("spkC", "u6", "Kitchen heating up", "increase", "heat", "kitchen")],
            "test": [("spkD", "u7", "Turn the lights off", "deactivate", "lights", "none"),
                     ("spkD", "u8", "Use Korean", "change language", "Korean", "none")]}
    (root / "data").mkdir(parents=True)
    for split, items in rows.items():
        lines = [f"{k},wavs/speakers/{s}/{u}.wav,{s},{t},{a},{o},{loc}\n"
                 for k, (s, u, t, a, o, loc) in enumerate(items)]
        (root / "data" / f"{split}_data.csv").write_text(header + "".join(lines))
        for k, (speaker, utterance, *_) in enumerate(items):
            _wav(root / "wavs" / "speakers" / speaker / f"{utterance}.wav", seed=k)


def test_fluent_speech_commands_intents(tmp_path):
    root = tmp_path / "fluent_speech_commands_dataset"
    _fluent_speech_commands(root)
    folder = real.prepare_fluent_speech_commands(root, tmp_path / "data", progress=False)
    train = _manifest(folder, "train")
    assert train.root == root.resolve()
    assert list(train.files) == ["wavs/speakers/spkA/u1.wav", "wavs/speakers/spkA/u2.wav",
                                 "wavs/speakers/spkB/u3.wav", "wavs/speakers/spkB/u4.wav"]
    assert read_labels(folder / "train.ic") == [
        "activate lights none", "change_language Korean none", "increase heat kitchen",
        "deactivate lights none"]
    assert read_labels(folder / "test.ic") == ["deactivate lights none",
                                               "change_language Korean none"]
    assert read_labels(folder / "valid.wrd") == ["Lights on", "Kitchen heating up"]
    assert read_dictionary(folder / "dict.action.txt") == ["activate", "change_language",
                                                           "deactivate", "increase"]
    assert read_dictionary(folder / "dict.object.txt") == ["Korean", "heat", "lights"]
    assert read_dictionary(folder / "dict.location.txt") == ["kitchen", "none"]


def test_fluent_speech_commands_run_superb_end_to_end(cli, tmp_path):
    root = tmp_path / "fluent_speech_commands_dataset"
    _fluent_speech_commands(root)
    made = cli("data", "fluentcommands", "--root", root, "--out", tmp_path / "data", "--quiet")
    assert made.returncode == 0, made.stderr[-2000:]
    results = _superb(cli, "ic", tmp_path / "data", tmp_path / "run")
    assert results["task"] == "ic" and results["data"]["utterances"] == \
        {"train": 4, "valid": 2, "test": 2}
    assert results["chance"] == pytest.approx(1 / 4)   # four distinct intents in the data


# --------------------------------------------------------------------------- Audio SNIPS
def test_snips_slot_symbols(tmp_path):
    root = tmp_path / "SNIPS"
    (root).mkdir()
    (root / "all.iob.snips.txt").write_text(
        # s3prl's form: one slot name per word, a slot = consecutive words with the same name
        "Joanna-snips-train-1 BOS ADD SHARON JONES TO MY PLAYLIST . EOS\t"
        "O O artist artist O playlist_owner playlist O AddToPlaylist\n"
        # IOB tags; '&' is read AND
        "Ivy-snips-train-2 BOS book for 2 & more EOS\t"
        "O O O B-party_size I-party_size I-party_size BookRestaurant\n"
        "Amy-snips-valid-0 BOS play jazz EOS\tO O genre PlayMusic\n"
        "Brian-snips-test-0 BOS rate it EOS\tO O O RateBook\n"
        "Brian-snips-train-3 BOS a test voice in train EOS\tO O O O O O RateBook\n")
    for name in ("train/Joanna-snips-train-1", "train/Ivy-snips-train-2",
                 "train/Brian-snips-train-3",            # a test voice: not in train
                 "train/Salli-snips-train-9",            # no label: left out
                 "valid/Amy-snips-valid-0", "test/Brian-snips-test-0"):
        _wav(root / f"{name}.wav")
    folder = real.prepare_snips(root, tmp_path / "data", progress=False)
    assert list(_manifest(folder, "train").files) == ["train/Ivy-snips-train-2.wav",
                                                      "train/Joanna-snips-train-1.wav"]
    assert read_labels(folder / "train.slt") == [
        "b o o k | f o r | <party_size> 2 | A N D | m o r e </>",
        "A D D | <artist> S H A R O N | J O N E S </> | T O | <playlist_owner> M Y </> | "
        "<playlist> P L A Y L I S T </>"]
    assert read_labels(folder / "train.wrd") == ["book for 2 & more",
                                                 "ADD SHARON JONES TO MY PLAYLIST"]
    assert read_labels(folder / "valid.slt") == ["p l a y | <genre> j a z z </>"]
    assert read_labels(folder / "test.slt") == ["r a t e | i t"]
    symbols = {s for split in ("train", "valid", "test")
               for line in read_labels(folder / f"{split}.slt") for s in line.split()}
    assert set(read_dictionary(folder / "dict.slt.txt")) == symbols


# ------------------------------------------------------------------------------ LibriMix
def test_librimix_kaldi_folders(tmp_path):
    root = tmp_path / "diarization" / "data"
    mixes = tmp_path / "Libri2Mix" / "wav16k" / "max"
    for name, part in (("train", "train-100"), ("dev", "dev"), ("test", "test")):
        (root / name).mkdir(parents=True)
        wavs = [mixes / part / "mix_both" / f"{part}-mix{k}.wav" for k in (1, 2)]
        for k, wav in enumerate(wavs):
            _wav(wav, seconds=1.0, seed=k)
        # Recording ids that are not the file names: the task looks segments up by file name.
        (root / name / "wav.scp").write_text(f"rec2 {wavs[1]}\nrec1 {wavs[0]}\n")
        (root / name / "rttm").write_text(
            "SPEAKER rec1 1 0.00 0.60 <NA> <NA> 19-198 <NA> <NA>\n"
            "SPEAKER rec1 1 0.40 0.55 <NA> <NA> 103-1240 <NA> <NA>\n"
            "SPEAKER rec2 1 0.125 0.5 <NA> <NA> 19-198 <NA> <NA>\n")
    folder = real.prepare_librimix(root, tmp_path / "data", progress=False)
    valid = _manifest(folder, "valid")
    assert valid.root == (mixes / "dev" / "mix_both").resolve()
    assert list(valid.files) == ["dev-mix1.wav", "dev-mix2.wav"]
    assert _lines(folder / "test.rttm") == [
        "SPEAKER test-mix1 1 0.00 0.60 <NA> <NA> 19-198 <NA> <NA>",
        "SPEAKER test-mix1 1 0.40 0.55 <NA> <NA> 103-1240 <NA> <NA>",
        "SPEAKER test-mix2 1 0.125 0.5 <NA> <NA> 19-198 <NA> <NA>"]
    from models.trainer.superb.tasks.sd import TASK

    labels = TASK.load_labels(folder, {s: read_manifest(folder / f"{s}.tsv")
                                       for s in ("train", "valid", "test")})
    segments, speakers, seconds = labels["train"][0]
    assert segments == [("19-198", 0.0, 0.6), ("103-1240", 0.4, pytest.approx(0.95))]
    assert seconds == 1.0
    assert speakers == ["103-1240", "19-198"]


# ------------------------------------------------------------------------------ QUESST14
def test_quesst14_english_queries_and_hits(tmp_path):
    root = tmp_path / "quesst14Database"
    for name in ("Audio/quesst14_00001", "Audio/quesst14_00002", "Audio/quesst14_00003",
                 "dev_queries/quesst14_dev_0001", "dev_queries/quesst14_dev_0002",
                 "eval_queries/quesst14_eval_0001"):
        _wav(root / f"{name}.wav")
    scoring = root / "scoring"
    (scoring / "groundtruth_quesst14_dev").mkdir(parents=True)
    (scoring / "groundtruth_quesst14_eval").mkdir()
    (scoring / "language_key_utterances.lst").write_text(
        "quesst14Database/Audio/quesst14_00001.wav nnenglish\n"
        "quesst14Database/Audio/quesst14_00002.wav albanian\n"
        "quesst14Database/Audio/quesst14_00003.wav nnenglish\n")
    (scoring / "language_key_dev.lst").write_text(
        "quesst14Database/dev_queries/quesst14_dev_0001.wav nnenglish\n"
        "quesst14Database/dev_queries/quesst14_dev_0002.wav czech\n")
    (scoring / "language_key_eval.lst").write_text(
        "quesst14Database/eval_queries/quesst14_eval_0001.wav nnenglish\n")
    (scoring / "groundtruth_quesst14_dev" / "quesst14_dev.rttm").write_text(
        "LEXEME quesst14_00003 1 1.20 0.50 quesst14_dev_0001 lex <NA> <NA>\n"
        "LEXEME quesst14_00002 1 0.20 0.50 quesst14_dev_0001 lex <NA> <NA>\n"
        "LEXEME quesst14_00001 1 0.00 0.00 NO_KEYWORD lex <NA> <NA>\n")
    (scoring / "groundtruth_quesst14_eval" / "quesst14_eval.rttm").write_text(
        "LEXEME quesst14_00001 1 0.30 0.40 quesst14_eval_0001 lex <NA> <NA>\n")
    folder = real.prepare_quesst14(root, tmp_path / "data", progress=False)
    documents = ["Audio/quesst14_00001.wav", "Audio/quesst14_00003.wav"]   # English only
    assert list(_manifest(folder, "docs_valid").files) == documents
    assert list(_manifest(folder, "docs_test").files) == documents
    assert list(_manifest(folder, "queries_valid").files) == \
        ["dev_queries/quesst14_dev_0001.wav"]
    assert list(_manifest(folder, "queries_test").files) == \
        ["eval_queries/quesst14_eval_0001.wav"]
    assert _lines(folder / "queries_valid.hits") == ["1"]   # document 00003, the second
    assert _lines(folder / "queries_test.hits") == ["0"]


# ------------------------------------------------------------------------------- IEMOCAP
def _iemocap(root):
    for session in range(1, 6):
        dialog = f"Ses0{session}F_impro01"
        emotions = ["neu", "exc", "xxx"] + (["sad"] if session == 2 else [])
        lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        for k, emotion in enumerate(emotions):
            utterance = f"{dialog}_F{k:03d}"
            _wav(root / f"Session{session}" / "sentences" / "wav" / dialog / f"{utterance}.wav",
                 seed=10 * session + k)
            lines += [f"[{k}.0000 - {k}.9000]\t{utterance}\t{emotion}\t[2.5, 2.5, 2.5]", ""]
        folder = root / f"Session{session}" / "dialog" / "EmoEvaluation"
        folder.mkdir(parents=True)
        (folder / f"{dialog}.txt").write_text("\n".join(lines))


def test_iemocap_fold_tests_on_one_session(tmp_path):
    root = tmp_path / "IEMOCAP"
    _iemocap(root)
    folder = real.prepare_iemocap(root, tmp_path / "data", fold=2, progress=False)
    assert list(_manifest(folder, "test").files) == [
        f"Session2/sentences/wav/Ses02F_impro01/Ses02F_impro01_F{k:03d}.wav" for k in (0, 1, 3)]
    assert read_labels(folder / "test.er") == ["neu", "hap", "sad"]   # exc -> hap, xxx out
    assert read_dictionary(folder / "dict.er.txt") == ["neu", "hap", "ang", "sad"]
    rest = {f"Session{s}/sentences/wav/Ses0{s}F_impro01/Ses0{s}F_impro01_F{k:03d}.wav": label
            for s in (1, 3, 4, 5) for k, label in ((0, "neu"), (1, "hap"))}
    found = {}
    for split, size in (("train", 6), ("valid", 2)):   # 80 % of 8, then the rest
        manifest = _manifest(folder, split)
        assert len(manifest) == size
        found.update(zip(manifest.files, read_labels(folder / f"{split}.er")))
    assert found == rest


def test_iemocap_results_are_not_called_a_proxy(tmp_path):
    from train_fixtures import TINY_OVERRIDES

    from models.trainer.superb.runner import SuperbSettings, run_superb

    root = tmp_path / "IEMOCAP"
    _iemocap(root)
    real.prepare_iemocap(root, tmp_path / "data", fold=1, progress=False)
    results = run_superb(SuperbSettings(task="er", out=str(tmp_path / "run"),
                                        random_init=TINY_MODEL, overrides=dict(TINY_OVERRIDES),
                                        data=str(tmp_path / "data"), steps=2, eval_every=1,
                                        progress=False))
    assert results["proxy"].startswith("none: the data's own classes")
    assert results["chance"] == pytest.approx(1 / 4)


# ------------------------------------------------------------------------------- errors
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path):
    fluent = tmp_path / "fsc"
    _fluent_speech_commands(fluent)
    (fluent / "data" / "test_data.csv").unlink()
    voxceleb = tmp_path / "VoxCeleb1"
    _voxceleb1(voxceleb)
    (voxceleb / "iden_split.txt").unlink()
    cases = [
        (("voxceleb1", "--root", tmp_path / "nowhere"), "nowhere: VoxCeleb1 folder does not exist"),
        (("fluentcommands", "--root", fluent), "test_data.csv: missing"),
        (("voxceleb1", "--root", voxceleb, "--tasks", "sid"), "iden_split.txt: missing"),
        (("iemocap", "--root", tmp_path / "nowhere"), "IEMOCAP folder does not exist"),
    ]
    for arguments, needle in cases:
        result = cli("data", *arguments, "--out", tmp_path / "data", "--quiet")
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
        assert lines[0].startswith("profile-encoder: error:") and needle in lines[0], lines
    assert not (tmp_path / "data" / "ic").exists() and not (tmp_path / "data" / "sid").exists()


def test_existing_task_folder_needs_overwrite(tmp_path):
    root = tmp_path / "fsc"
    _fluent_speech_commands(root)
    real.prepare_fluent_speech_commands(root, tmp_path / "data", progress=False)
    with pytest.raises(DataError, match="already exists; pass --force"):
        real.prepare_fluent_speech_commands(root, tmp_path / "data", progress=False)
    (root / "data" / "test_data.csv").write_text("path,transcription\n")
    with pytest.raises(DataError, match="no column 'action'"):
        real.prepare_fluent_speech_commands(root, tmp_path / "data", overwrite=True,
                                            progress=False)
    assert read_labels(tmp_path / "data" / "ic" / "test.ic")   # the old folder is kept


def test_option_limits_are_refused_before_any_work(cli, tmp_path):
    """The importer table's limits reach the parser: `--valid-trials 1` cannot make a
    same-speaker and a different-speaker trial, and IEMOCAP has sessions 1-5."""
    cases = [(("voxceleb1", "--valid-trials", "1"), "--valid-trials: expected at least 2"),
             (("iemocap", "--fold", "6"), "--fold: invalid choice: 6")]
    for arguments, needle in cases:
        result = cli("data", arguments[0], "--root", tmp_path / "nowhere", *arguments[1:],
                     "--out", tmp_path / "data", "--quiet")
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and needle in lines[0], lines
    assert not (tmp_path / "data").exists()


def test_importer_table_matches_its_loaders():
    """Every command's loader exists, takes the keywords its options set, and a loader that
    writes several tasks defaults to the table's tasks."""
    import inspect

    assert set(real.REAL_CORPORA) == {"librispeech-tasks", "speechcommands-v0.01", "voxceleb1",
                                      "fluentcommands", "snips", "librimix", "quesst14",
                                      "iemocap"}
    written = [task for corpus in real.REAL_CORPORA.values() for task in corpus.tasks]
    assert sorted(written) == sorted(["asr", "pr", "ks", "sid", "asv", "ic", "sf", "sd", "qbe",
                                      "er"])
    for corpus in real.REAL_CORPORA.values():
        parameters = inspect.signature(getattr(real, corpus.loader)).parameters
        assert {"root", "out", "overwrite", "progress", *corpus.options} <= set(parameters)
        if "tasks" in corpus.options:
            assert tuple(parameters["tasks"].default) == corpus.tasks
