"""study --anchors-from: which anchors are copies, and what makes a copy refused."""
import json

import pytest

from models.trainer.errors import DataError
from models.trainer.study.anchors import (
    check_anchor_source,
    mark_reused_anchors,
    mismatches,
    source_corpus,
)
from models.trainer.study.job import Job
from models.trainer.study.plan import build_plan
from models.trainer.study.settings import StudySettings

CORPUS = {"format": "encoder-profiler-synth/1", "espeak_ng": "1.52.0", "sample_rate": 16000,
          "tasks": {"ks": {"seed": 0, "sizes": {"test": 3}, "utterances": 9}}}


def anchor_job(**options):
    """A KS anchor evaluation of conformer-s's random-init twin at seed 1, as planned."""
    values = {"task": "ks", "seed": 1, "random_init": "conformer-s", "overrides": {},
              "out": "/here/runs/conformer-s/seed-1/superb/random/ks", "device": None,
              "progress": False, "chain": None, "gate": None}
    values.update(options)
    return Job("superb/conformer-s/seed-1/random/ks", "superb", None, ("conformer-s", 1),
               variant="random", task="ks", options=values)


def recorded(**changes):
    """What such an evaluation's results.json records (KS's defaults: 1 500 steps of 32 at
    lr 0.001, the task table's row)."""
    results = {"upstream": {"kind": "random-init", "model": "conformer-s", "overrides": {},
                            "seed": 1},
               "settings": {"steps": 1500, "batch_size": 32, "lr": 0.001, "seed": 1,
                            "hidden_states": "0..16", "device": "cpu"}}
    for key, value in changes.items():
        part, name = key.split("__")
        results[part][name] = value
    return results


def test_the_same_evaluation_on_the_same_corpus_is_a_copy():
    assert mismatches(anchor_job(), recorded(), CORPUS, json.loads(json.dumps(CORPUS))) == []


@pytest.mark.parametrize("changes, needle", [
    ({"upstream__seed": 0}, "upstream seed 0, here 1"),
    ({"upstream__model": "bq-conformer-s"}, "upstream model 'bq-conformer-s'"),
    ({"upstream__kind": "trained"}, "upstream kind 'trained'"),
    ({"upstream__overrides": {"layers": 4}}, "upstream overrides"),
    ({"upstream__deployed": "packed W1A1 kernels"}, "deployed"),
    ({"settings__lr": 0.01}, "head lr 0.01, here 0.001"),
    ({"settings__seed": 2}, "head seed 2, here 1"),
    ({"settings__hidden_states": "1..16"}, "hidden states 1..16"),
])
def test_a_different_evaluation_is_refused(changes, needle):
    found = mismatches(anchor_job(), recorded(**changes), CORPUS, CORPUS)
    assert any(needle in reason for reason in found), found


def test_the_device_it_ran_on_does_not_matter():
    assert mismatches(anchor_job(device="cpu"), recorded(settings__device="cuda"),
                      CORPUS, CORPUS) == []


@pytest.mark.parametrize("key, value, needle", [
    ("espeak_ng", "1.51", "corpus espeak_ng '1.51'"),
    ("tasks", {"ks": {"seed": 1, "sizes": {"test": 3}, "utterances": 9}}, "ks corpus differs"),
    ("tasks", {}, "ks corpus differs"),
])
def test_another_corpus_is_refused(key, value, needle):
    theirs = {**CORPUS, key: value}
    assert any(needle in reason for reason in mismatches(anchor_job(), recorded(), CORPUS,
                                                         theirs))


def _source(tmp_path, *, corpus_in_reports, variants=("random",)):
    source = tmp_path / "earlier"
    for variant in variants:
        evaluation = source / "runs" / "conformer-s" / "seed-0" / "superb" / variant / "ks"
        evaluation.mkdir(parents=True)
        (evaluation / "results.json").write_text("{}")     # scored simulated (no "deployed")
        (evaluation / "per_item.json").write_text("{}")
    (source / "study.json").write_text(json.dumps({"recipe": {"data": "OUT/data"}}))
    corpus = source / "corpus.json" if corpus_in_reports else source / "data" / "corpus.json"
    corpus.parent.mkdir(parents=True, exist_ok=True)
    corpus.write_text(json.dumps(CORPUS))
    return source, corpus


@pytest.mark.parametrize("corpus_in_reports", [True, False])
def test_a_study_folder_or_its_reports_folder_is_a_source(tmp_path, corpus_in_reports):
    source, corpus = _source(tmp_path, corpus_in_reports=corpus_in_reports)
    assert source_corpus(source) == corpus
    settings = StudySettings(out=str(tmp_path / "later"), preset="smoke", models="conformer-s",
                             seeds=2, tasks="ks", anchors_from=str(source), progress=False)
    assert check_anchor_source(settings) == corpus
    jobs = build_plan(settings)
    mark_reused_anchors(settings, jobs, corpus)
    copies = {job.key for job in jobs if job.options.get("reuse")}
    # Only what the source has: seed 0's random twin (no bq-random, no seed 1).
    assert copies == {"superb/conformer-s/seed-0/random/ks"}


@pytest.mark.parametrize("deployed, copied", [
    (False, {"random", "bq-random"}),
    # The earlier study scored its BQ anchor simulated: a deployed study evaluates its own.
    (True, {"random"}),
])
def test_an_anchor_scored_the_other_way_is_evaluated_not_copied(tmp_path, deployed, copied):
    source, corpus = _source(tmp_path, corpus_in_reports=True, variants=("random", "bq-random"))
    settings = StudySettings(out=str(tmp_path / "later"), preset="smoke", models="conformer-s",
                             seeds=1, tasks="ks", anchors_from=str(source), deployed=deployed,
                             progress=False)
    jobs = build_plan(settings)
    mark_reused_anchors(settings, jobs, corpus)
    assert {job.variant for job in jobs if job.options.get("reuse")} == copied


def test_a_source_without_its_corpus_description_is_refused(tmp_path):
    source, corpus = _source(tmp_path, corpus_in_reports=False)
    corpus.unlink()
    settings = StudySettings(out=str(tmp_path / "later"), anchors_from=str(source))
    with pytest.raises(DataError, match="corpus description .* is missing"):
        check_anchor_source(settings)
