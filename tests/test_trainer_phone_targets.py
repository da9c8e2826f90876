"""Phone events -> frame labels, the harder corpus options, phone targets, the utterance
bootstrap of masked accuracy, and `train --targets` bad input (exit 2, one line)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.trainer.data.phones import SILENCE, frame_phones
from models.trainer.data.synth import mix_at_snr, reverberate
from models.trainer.data.synth_plan import SynthOptions, plan_task, resolve_sizes
from models.trainer.errors import DataError
from models.trainer.fileio import write_json
from models.trainer.pretrain.accuracy import accuracy_over_prior, utterance_bootstrap_se
from models.trainer.pretrain.settings import parse_targets, resolve_settings

ROOT = Path(__file__).resolve().parents[1]


def test_frame_phones_hand_worked():
    # Frame i's centre is sample 320 i + 200. 1 200 samples -> (1200 - 400) // 320 + 1 = 3
    # frames, centres 200, 520, 840. Events: "a" from 0, "b" from 500, a pause from 800.
    events = [(0, "a"), (500, "b"), (800, "")]
    assert frame_phones(events, 1200) == ["a", "b", SILENCE]
    # Trimmed audio starting 300 samples in: centres 500, 820, 1140 of the original.
    assert frame_phones(events, 1200, offset=300) == ["b", SILENCE, SILENCE]
    # Before the first phoneme it is silence.
    assert frame_phones([(600, "x")], 1200) == [SILENCE, SILENCE, "x"]
    with pytest.raises(DataError):
        frame_phones([(500, "b"), (0, "a")], 1200)


def test_mix_at_snr_measured_from_the_signal():
    rng = np.random.default_rng(3)
    speech = np.sin(np.arange(16000) / 7.0) * 0.3
    noise = rng.standard_normal(16000)
    noise /= np.sqrt(np.mean(noise ** 2))
    for snr in (0.0, 10.0, 25.0):
        mixed = mix_at_snr(speech, noise, snr)
        added = mixed - speech
        measured = 10 * np.log10(np.mean(speech ** 2) / np.mean(added ** 2))
        assert measured == pytest.approx(snr, abs=1e-9)


def test_reverberation_keeps_the_direct_path_and_decays():
    impulse = np.zeros(8000, np.float32)
    impulse[0] = 1.0
    response = reverberate(impulse, 0.2, np.random.default_rng(0)).astype(np.float64)
    assert np.sum(response ** 2) == pytest.approx(1.0, rel=1e-5)   # unit energy
    # The direct path (1 before normalization) sits at t = 0: nothing moves earlier.
    assert response[0] == pytest.approx(1.0 / np.sqrt(1.0 + np.sum(response[1:3200] ** 2)
                                                      / response[0] ** 2), rel=1e-4)
    # Energy of the last 10 ms of the 0.2 s tail is about 60 dB below the first 10 ms'.
    first, last = np.sum(response[1:161] ** 2), np.sum(response[3040:3200] ** 2)
    assert 45 < 10 * np.log10(first / last) < 75
    assert np.abs(response[3200:]).max() < 1e-6                 # rt60 long


def test_default_options_plan_the_same_corpus():
    sizes = resolve_sizes("tiny")
    assert plan_task("pretrain", sizes, 0) == plan_task("pretrain", sizes, 0, SynthOptions())
    phones = plan_task("pretrain", sizes, 0, SynthOptions(phones=True, snr_db=12.0))
    plain = plan_task("pretrain", sizes, 0)
    assert [p.text for p in phones] == [p.text for p in plain]
    assert all(p.phones and p.snr_db == 12.0 for p in phones)
    with pytest.raises(DataError):
        SynthOptions(rt60=-1.0)


def test_bootstrap_se_matches_closed_form_for_iid_utterances():
    # Equal frame counts: the ratio is the mean of per-utterance accuracies a_i, whose
    # bootstrap variance is exactly var(a) (population form) / n.
    rng = np.random.default_rng(1)
    n, m = 200, 50
    hits = rng.binomial(m, rng.uniform(0.2, 0.8, n))
    expected = np.std(hits / m) / np.sqrt(n)
    measured = utterance_bootstrap_se(hits, np.full(n, m), replicates=4000, seed=2)
    assert measured == pytest.approx(expected, rel=0.05)


def test_accuracy_over_prior_counts():
    result = accuracy_over_prior([5, 3], [2, 2], [10, 10])
    assert result["acc_masked_prior"] == pytest.approx(0.2)
    assert result["acc_over_prior"] == pytest.approx(0.2)
    assert result["bootstrap_utterances"] == 2 and result["acc_over_prior_se"] >= 0


def test_parse_targets_and_iteration_two():
    assert parse_targets("mfcc") == ("mfcc", None, None)
    assert parse_targets("features:a:b/run:3") == ("features", "a:b/run", 3)
    for bad in ("words", "features:run", "features:run:x", "features::2"):
        with pytest.raises(DataError):
            parse_targets(bad)
    s = resolve_settings("conformer-s", "/tmp/x", targets="features:RUN:2")
    assert (s.iteration, s.targets_from, s.label_layer) == (2, "RUN", 2)
    with pytest.raises(DataError, match="disagree"):
        resolve_settings("conformer-s", "/tmp/x", targets="features:RUN:2", label_layer=3)


def _train(tmp_path, *extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "profiler", "train", "--model", "conformer-s",
                           "--out", str(tmp_path / "run"), "--quiet", *extra],
                          capture_output=True, text=True, env=env, timeout=120)


def _one_line_exit_2(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_cli_features_run_missing(tmp_path):
    result = _train(tmp_path, "--targets", f"features:{tmp_path / 'nowhere'}:2")
    _one_line_exit_2(result, "nowhere")
    assert not (tmp_path / "run").exists()


def test_cli_bad_targets_spelling(tmp_path):
    _one_line_exit_2(_train(tmp_path, "--targets", "words"), "--targets")


def test_cli_corpus_without_phones(tmp_path):
    pretrain = tmp_path / "corpus" / "pretrain"
    pretrain.mkdir(parents=True)
    for split in ("train", "valid"):
        (pretrain / f"{split}.tsv").write_text(f"{pretrain}\n")
    result = _train(tmp_path, "--targets", "phones", "--data", str(tmp_path / "corpus"))
    _one_line_exit_2(result, "phoneme events")
    assert not (tmp_path / "run").exists()


def test_cli_layer_out_of_range(tmp_path):
    import models
    from models.trainer.pretrain import checkpoint as ckpt

    run = tmp_path / "teacher"
    model = models.build("conformer-s", layers=2)
    run.mkdir()
    write_json(run / ckpt.CONFIG, ckpt.config_record("conformer-s", {"layers": 2}, model))
    write_json(run / ckpt.METADATA, {"settings": {"model": "conformer-s"}})
    ckpt.save_checkpoint(run, 1, model.state_dict(), {"step": 1}, keep=1)
    result = _train(tmp_path, "--targets", f"features:{run}:7")
    _one_line_exit_2(result, "out of range")
    assert not (tmp_path / "run").exists()
