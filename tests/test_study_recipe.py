"""The study's recipe: BiT's chain for bq, the sensitivity variants, the paper preset with
its ASR gate, the chain recorded in results.json, and the time plan of --dry-run."""
import json

import pytest

from models.trainer.errors import DataError
from models.trainer.study.budget import job_seconds
from models.trainer.study.plan import (
    FINISHED,
    TO_DO,
    build_plan,
    job_state,
)
from models.trainer.study.presets import PRESETS
from models.trainer.study.recipe import study_record
from models.trainer.study.report import head_budget_line
from models.trainer.study.runner import dry_run, evaluate, gate_passes, record_chain
from models.trainer.study.settings import StudySettings


def settings(tmp_path, **changes):
    values = dict(out=str(tmp_path / "study"), preset="smoke", models="conformer-s",
                  seeds=1, tasks="ks", progress=False)
    values.update(changes)
    return StudySettings(**values)


def by_key(plan):
    return {job.key: job for job in plan}


def test_bq_runs_bits_chain_and_its_last_stage_is_the_upstream(tmp_path):
    jobs = by_key(build_plan(settings(tmp_path)))
    bq = jobs["train/conformer-s/seed-0/bq"]
    assert bq.options["chain"] == "W32A32,W1A4,W1A2,W1A1"
    assert bq.options["teacher"].endswith("seed-0/fp")
    last = str(bq.path / "stage-3-W1A1")
    assert jobs["superb/conformer-s/seed-0/bq/ks"].options["upstream"] == last
    assert jobs["superb/conformer-s/seed-0/bq/ks"].options["chain"] == [
        "W32A32", "W1A4", "W1A2", "W1A1"]
    assert jobs["superb/conformer-s/seed-0/fp/ks"].options["chain"] == ["W32A32"]
    assert jobs["propagation/conformer-s/seed-0"].options["students"] == {"bq": last}
    record = study_record(settings(tmp_path))
    # one record of the chains, in the recipe (the report reads recipe.chains)
    assert record["recipe"]["chains"]["bq"] == ["W32A32", "W1A4", "W1A2", "W1A1"]
    assert record["recipe"]["chains"]["fp"] == ["W32A32"] and "chains" not in record


def test_sensitivity_variants(tmp_path):
    jobs = by_key(build_plan(settings(tmp_path, models="conformer-s,sparseformer-dn-s",
                                      sensitivity="all")))
    single = jobs["train/conformer-s/seed-0/bq-single"]
    assert "chain" not in single.options and single.options["teacher"].endswith("/fp")
    assert jobs["superb/conformer-s/seed-0/bq-single/ks"].options["chain"] == [
        "W32A32", "W1A1"]
    channel = jobs["train/conformer-s/seed-0/bq-dw-channel"]
    assert channel.options["overrides"]["depthwise_scale"] == "channel"
    assert channel.options["chain"] == "W32A32,W1A4,W1A2,W1A1"
    # The Sparseformer has no depthwise convolution: that variant would be bq again.
    assert "train/sparseformer-dn-s/seed-0/bq-dw-channel" not in jobs
    for name, upstream in (("fp-1L", "fp"), ("bq-1L", "bq/stage-3-W1A1")):
        head = jobs[f"superb/conformer-s/seed-0/{name}/ks"]
        assert head.options["hidden_states"] == "1-L"
        assert head.options["upstream"].endswith(f"seed-0/{upstream}")
        assert f"train/conformer-s/seed-0/{name[:2]}" in head.needs
    assert "hidden_states" not in jobs["superb/conformer-s/seed-0/bq/ks"].options
    # bq-scales: bq's chain, its stages' activation scales from data; measured like bq.
    for model in ("conformer-s", "sparseformer-dn-s"):
        scales = jobs[f"train/{model}/seed-0/bq-scales"]
        assert scales.options["chain"] == "W32A32,W1A4,W1A2,W1A1"
        assert scales.options["student_scales"] == "data"
        assert jobs[f"train/{model}/seed-0/bq"].options["student_scales"] == "teacher"
        assert f"superb/{model}/seed-0/bq-scales/ks" in jobs
        assert "bq-scales" in jobs[f"propagation/{model}/seed-0"].options["students"]


@pytest.mark.parametrize("changes, needle", [
    (dict(sensitivity="single,wide"), "unknown variant 'wide'"),
    # "," named nothing and was taken as none
    (dict(sensitivity=","), "--sensitivity: expected a comma list of single, state0"),
    (dict(ablations=" , "), "--ablations: expected a comma list of attention"),
    (dict(sensitivity="scales", student_scales="data"), "bq already does"),
    (dict(chain="W32A32,W1A4"), "down to W1A1"),
    (dict(chain="W1A2,W1A1"), "down to W1A1"),
    (dict(chain="W32A32"), "needs a teacher"),
])
def test_bad_recipes_are_one_line(tmp_path, changes, needle):
    with pytest.raises(DataError, match=needle):
        build_plan(settings(tmp_path, **changes))


def test_paper_preset_has_the_power_chosen_before_the_run(tmp_path):
    paper = PRESETS["paper"]
    assert 12 * paper.corpus.ks_per_class_test == 1020 and paper.corpus.pr_test >= 400
    assert paper.task_size == "default"                    # SD at its default size
    jobs = by_key(build_plan(StudySettings(out=str(tmp_path / "s"), progress=False)))
    for model in ("conformer-s", "sparseformer-dn-s"):
        assert {key.split("/")[2] for key in jobs if key.startswith(f"train/{model}/")} == {
            f"seed-{seed}" for seed in range(5)}
    tasks = {key.split("/")[-1] for key in jobs if key.startswith("superb/")}
    assert tasks == {"sd", "ks", "pr", "asr"}
    gated = jobs["superb/conformer-s/seed-3/bq/asr"]
    assert gated.options["gate"].endswith("seed-3/superb/fp/asr")
    assert "superb/conformer-s/seed-3/fp/asr" in gated.needs
    assert jobs["superb/conformer-s/seed-3/fp/asr"].options["gate"] is None
    assert jobs["superb/conformer-s/seed-3/bq/sd"].options["gate"] is None


def _results(folder, **values):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(values))


def test_the_gate_needs_the_teacher_clear_of_chance(tmp_path):
    # WER, lower is better: [0.80, 0.97] against chance 1.0 beats it; [0.9, 1.02] does not.
    _results(tmp_path / "a", metric="wer", value=0.9, interval=[0.8, 0.97], chance=1.0,
             higher_is_better=False)
    _results(tmp_path / "b", metric="wer", value=0.95, interval=[0.9, 1.02], chance=1.0,
             higher_is_better=False)
    _results(tmp_path / "c", metric="accuracy", value=0.2, interval=[0.09, 0.3],
             chance=1 / 12, higher_is_better=True)
    assert gate_passes(tmp_path / "a")[0]
    assert not gate_passes(tmp_path / "b")[0]
    assert gate_passes(tmp_path / "c")[0]
    # The reason, which gated.json keeps and the report prints, in the report's percent.
    assert gate_passes(tmp_path / "b")[1] == (
        "fp teacher wer 95.0 % [90.0, 102.0] against chance 100.0 %: does not beat chance")


def test_a_gated_out_evaluation_is_done_without_results(tmp_path):
    study = settings(tmp_path, preset="paper", seeds=1, tasks="asr")
    jobs = by_key(build_plan(study))
    fp, bq = (jobs[f"superb/conformer-s/seed-0/{v}/asr"] for v in ("fp", "bq"))
    _results(fp.path, metric="wer", value=1.0, interval=[0.98, 1.02], chance=1.0,
             higher_is_better=False)
    evaluate(bq, study)                       # the teacher does not beat chance
    assert not (bq.path / "results.json").exists()
    assert "does not beat chance" in json.loads((bq.path / "gated.json").read_text())["reason"]
    assert job_state(bq) == FINISHED


def test_results_record_the_chain_their_upstream_ran(tmp_path):
    _results(tmp_path, task="ks", value=0.5)
    record_chain(tmp_path / "results.json", "bq", ["W32A32", "W1A4", "W1A2", "W1A1"])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved == {"task": "ks", "value": 0.5, "variant": "bq",
                     "chain": ["W32A32", "W1A4", "W1A2", "W1A1"]}


def test_dry_run_prints_the_time_plan(tmp_path):
    study = settings(tmp_path, preset="paper", seeds=1, tasks="ks")
    lines = []
    dry_run(study, echo=lines.append)
    assert any(line.startswith("estimated CPU time on 2 cores") for line in lines)
    assert any(line.strip().startswith("total") and "h left" in line for line in lines)
    jobs = by_key(build_plan(study))
    # 15 s to start a run, then 600 steps of 8 x 2 s crops at 0.56 s per 16 s of audio;
    # 3 stages, each 15 s and 100 steps at 1.04 s. The teacher (iteration 2) first labels
    # its 1 200 + 60 utterances: 109 s measured for the paper corpus, 100 of them the
    # features, which stopping at the label layer cut to 0.74x (74 + 9 s); its iteration-1
    # run has MFCC targets, not priced apart.
    assert job_seconds(jobs["train/conformer-s/seed-0/fp-it1"], PRESETS["paper"]) == \
        pytest.approx(15.0 + 336.0)
    assert job_seconds(jobs["train/conformer-s/seed-0/fp"], PRESETS["paper"]) == \
        pytest.approx(15.0 + 336.0 + 83.0)
    assert job_seconds(jobs["train/conformer-s/seed-0/bq"], PRESETS["paper"]) == \
        pytest.approx(3 * (15.0 + 104.0))


def test_the_time_plan_prices_a_job_by_the_median_its_other_seeds_logged(tmp_path):
    from models.trainer.fileio import append_log

    study = settings(tmp_path, preset="paper", seeds=3, tasks="ks")
    log = tmp_path / "study" / "study.log.jsonl"
    log.parent.mkdir(parents=True)
    # Seeds 0 and 1 of the KS anchor took 300 s and 900 s, then seed 0 was rerun in 400 s:
    # the rerun replaces seed 0's first time, so the median is that of 400 and 900, 650.
    for seed, seconds in ((0, 300.0), (1, 900.0), (0, 400.0)):
        append_log(log, {"job": f"superb/conformer-s/seed-{seed}/random/ks",
                         "seconds": seconds, "shard": "1/1"})
    lines = []
    dry_run(study, echo=lines.append)
    plan = "\n".join(lines)
    assert "3 of " in plan and "at the median time this study logged" in plan
    anchors = next(line for line in lines if line.strip().startswith("random-init"))
    # 3 seeds x 650 s for the random-init KS heads; the bq-random ones are priced by the
    # planning rate, as no bq-random job has run.
    bq_random = job_seconds(by_key(build_plan(study))["superb/conformer-s/seed-0/bq-random/ks"],
                            PRESETS["paper"])
    assert f"{(3 * 650.0 + 3 * bq_random) / 3600:6.2f} h in all" in anchors
    # An anchor copied from another study (--anchors-from) logs its few seconds but took
    # no evaluation's time: it leaves the median as it was.
    append_log(log, {"job": "superb/conformer-s/seed-2/random/ks", "seconds": 0.1,
                     "shard": "1/1", "reused_from": "/earlier/study/runs/seed-2/random/ks"})
    again = []
    dry_run(study, echo=again.append)
    assert next(line for line in again if line.strip().startswith("random-init")) == anchors


def test_a_job_class_is_priced_by_its_jobs_that_had_the_cores_to_themselves():
    from models.trainer.study.budget import had_the_cores, logged_seconds

    def entry(seed, seconds, cpu=None, threads=None):
        found = {"job": f"train/conformer-s/seed-{seed}/fp", "seconds": seconds}
        if cpu is not None:
            found["cpu_seconds"] = cpu
        if threads is not None:
            found["threads"] = threads
        return found

    # 2 threads: 506 s of CPU in 263 s is 1.92 cores busy (alone: at least 0.9 x 2 = 1.8);
    # 673 s in 719 s is 0.94 (beside a test suite, or paused).
    assert had_the_cores(entry(0, 263.0, 506.0)) is True
    assert had_the_cores(entry(1, 719.0, 673.0)) is False
    assert had_the_cores(entry(1, 719.0, 673.0, threads=1)) is True     # 0.94 of 1 core
    assert had_the_cores(entry(2, 300.0)) is None                      # no CPU time logged
    assert had_the_cores(entry(2, 0.0, 0.0)) is None                   # a copy
    # Alone: 263 and 281 s; shared: 719 s. The class costs the median of the first two, 272.
    entries = [entry(0, 263.0, 506.0), entry(1, 719.0, 673.0), entry(2, 281.0, 540.0)]
    assert logged_seconds(entries) == {"train/conformer-s/seed-*/fp": 272.0}
    # Without any job alone (or without CPU times), the median of all: 300, 719, 900 -> 719.
    assert logged_seconds([entry(0, 300.0), entry(1, 719.0, 673.0), entry(2, 900.0)]) == \
        {"train/conformer-s/seed-*/fp": 719.0}
    # Resumed on another machine: once a job of the class ran alone there, the plan
    # prices it at that machine's pace (650 s), not at the median over both (281 s).
    other = {**entry(3, 650.0, 1250.0), "cpu": "AMD EPYC"}
    on_both = entries + [other]
    assert logged_seconds(on_both, "AMD EPYC") == {"train/conformer-s/seed-*/fp": 650.0}
    assert logged_seconds(on_both, "Intel(R) Xeon(R) Processor") == \
        {"train/conformer-s/seed-*/fp": 281.0}
    assert logged_seconds(on_both) == {"train/conformer-s/seed-*/fp": 281.0}


def test_the_job_time_table_splits_a_kind_by_cpu_when_the_log_names_two():
    from types import SimpleNamespace

    from models.trainer.study.report import job_time_lines

    def entry(seed, seconds, cpu_seconds, cpu=None):
        found = {"job": f"superb/conformer-s/seed-{seed}/bq-random/sd", "seconds": seconds,
                 "cpu_seconds": cpu_seconds, "threads": 2}
        return found if cpu is None else {**found, "cpu": cpu}

    one = [entry(0, 130.0, 259.0), entry(1, 137.0, 271.0)]
    lines = job_time_lines(SimpleNamespace(job_log={e["job"]: e for e in one}))
    assert "| `superb/conformer-s/seed-*/bq-random/sd` | 2 | 2 | 2 | 134 | 130-137 |" in lines
    # two seeds more on another machine, 2.7x slower: a row each, 'not logged' for the
    # entries from before the log named the CPU
    both = one + [entry(2, 378.0, 705.0, "AMD EPYC"), entry(3, 350.0, 690.0, "AMD EPYC")]
    lines = job_time_lines(SimpleNamespace(job_log={e["job"]: e for e in both}))
    assert "| job | CPU | ran | CPU time logged | alone | median wall (s) | range (s) |" in lines
    assert ("| `superb/conformer-s/seed-*/bq-random/sd` | not logged | 2 | 2 | 2 | 134 | "
            "130-137 |") in lines
    assert ("| `superb/conformer-s/seed-*/bq-random/sd` | AMD EPYC | 2 | 2 | 2 | 364 | "
            "350-378 |") in lines


def test_a_study_grows_by_a_sensitivity_variant_but_not_by_another_chain(tmp_path):
    from models.trainer.study.runner import record_study

    record_study(settings(tmp_path))
    grown = record_study(settings(tmp_path, sensitivity="single"))
    assert grown["recipe"]["chains"]["bq-single"] == ["W32A32", "W1A1"]
    assert grown["recipe"]["chains"]["bq"] == ["W32A32", "W1A4", "W1A2", "W1A1"]
    with pytest.raises(DataError, match=r"other settings \(chains\)"):
        record_study(settings(tmp_path, chain="W32A32,W1A2,W1A1"))


def test_the_anchors_are_planned_gated_and_priced(tmp_path):
    from models.trainer.study.budget import time_plan

    study = settings(tmp_path, preset="paper", seeds=1, tasks="ks,asr")
    jobs = by_key(build_plan(study))
    for variant in ("random", "bq-random"):
        assert jobs[f"superb/conformer-s/seed-0/{variant}/asr"].options["gate"].endswith(
            "seed-0/superb/fp/asr")
        assert jobs[f"superb/conformer-s/seed-0/{variant}/ks"].options["gate"] is None
    mine = list(jobs.values())
    lines = time_plan(mine, PRESETS["paper"], ["to do"] * len(mine), FINISHED)
    anchors = next(line for line in lines if line.strip().startswith("random-init"))
    # the two KS anchors, priced as any KS evaluation (the ASR ones are behind the gate)
    ks = 2 * job_seconds(jobs["superb/conformer-s/seed-0/random/ks"], PRESETS["paper"])
    assert f"{ks / 3600:6.2f} h in all" in anchors


def test_the_committed_copy_keeps_gated_evaluations_and_run_records(tmp_path):
    from models.trainer.study.archive import committed_files

    base = tmp_path / "runs" / "conformer-s" / "seed-0" / "superb"
    for variant, name in (("bq", "gated.json"), ("fp", "results.json"), ("fp", "head.pt")):
        (base / variant / "asr").mkdir(parents=True, exist_ok=True)
        (base / variant / "asr" / name).write_text("{}")
    # A run's record (masked prediction against the prior) is kept; its weights are not.
    run = tmp_path / "runs" / "conformer-s" / "seed-0" / "fp"
    (run / "checkpoints").mkdir(parents=True)
    (run / "metadata.json").write_text('{"finished": true}')
    (run / "checkpoints" / "step-600.pt").write_text("")
    # A run still training is not copied yet: its record changes under it.
    running = tmp_path / "runs" / "conformer-s" / "seed-1" / "fp-it1"
    running.mkdir(parents=True)
    (running / "metadata.json").write_text('{"finished": false}')
    # Nor is a record that does not say it finished (the trainer always writes the key).
    unsaid = tmp_path / "runs" / "conformer-s" / "seed-2" / "fp"
    unsaid.mkdir(parents=True)
    (unsaid / "metadata.json").write_text('{"step": 10}')
    assert [str(path) for path in committed_files(tmp_path)] == [
        "runs/conformer-s/seed-0/fp/metadata.json",
        "runs/conformer-s/seed-0/superb/bq/asr/gated.json",
        "runs/conformer-s/seed-0/superb/fp/asr/results.json"]


def test_an_evaluation_run_at_another_head_budget_runs_again(tmp_path):
    # The paper preset gives PR its task default (1 500 steps of 16 at lr 0.01) and SD 300
    # steps; a PR head recorded at 300 steps is stale, one at the default is done.
    jobs = by_key(build_plan(settings(tmp_path, preset="paper", seeds=1, tasks="sd,pr")))
    pr, sd = jobs["superb/conformer-s/seed-0/fp/pr"], jobs["superb/conformer-s/seed-0/fp/sd"]
    _results(pr.path, value=0.85, settings={"steps": 300, "batch_size": 16, "lr": 0.01})
    assert job_state(pr) == TO_DO
    _results(pr.path, value=0.79, settings={"steps": 1500, "batch_size": 16, "lr": 0.01})
    assert job_state(pr) == FINISHED
    _results(sd.path, value=0.3, settings={"steps": 300, "batch_size": 8, "lr": 0.002})
    assert job_state(sd) == FINISHED
    _results(sd.path, value=0.3, settings={"steps": 300, "batch_size": 8, "lr": 0.001})
    assert job_state(sd) == TO_DO
    _results(sd.path, value=0.3)              # a backend that records no settings
    assert job_state(sd) == FINISHED


def test_the_report_flags_a_task_whose_heads_ran_different_budgets():
    line = head_budget_line({
        "ks": [{"steps": 1500, "batch_size": 32, "lr": 0.001}],
        "pr": [{"steps": 300, "batch_size": 16, "lr": 0.01},
               {"steps": 1500, "batch_size": 16, "lr": 0.01}]})
    assert "ks: 1500 steps of 32 at lr 0.001;" in line
    assert "pr: **mixed budgets** (300 steps of 16 at lr 0.01; 1500 steps of 16 at lr 0.01)" \
        in line


# ------------------------------------------------- the corpus, wherever the folder lives
def test_a_study_moved_to_another_folder_is_the_same_recipe(tmp_path, capsys):
    import shutil

    from models.trainer.study.archive import archive_study
    from models.trainer.study.runner import record_study

    first = tmp_path / "first" / "study"
    record = record_study(settings(tmp_path / "first"))
    assert record["recipe"]["data"] == "OUT/data"      # its own corpus, not its path
    given = tmp_path / "corpus"
    elsewhere = record_study(settings(tmp_path / "third", data=str(given)))
    assert elsewhere["recipe"]["data"] == str(given.resolve())
    # Moved (or rebuilt after losing its machine): the same recipe, so it resumes.
    moved = tmp_path / "moved" / "study"
    shutil.copytree(first, moved)
    record_study(settings(tmp_path / "moved"))
    # A record written before OWN_CORPUS named its own corpus by its absolute path.
    legacy = json.loads((moved / "study.json").read_text())
    legacy["recipe"]["data"] = str((moved / "data").resolve())
    (moved / "study.json").write_text(json.dumps(legacy))
    record_study(settings(tmp_path / "moved"))
    # Its report merges into the committed copy of the first folder's runs...
    reports = tmp_path / "reports"
    kept = reports / "runs" / "conformer-s" / "seed-0" / "superb" / "fp" / "ks" / "results.json"
    kept.parent.mkdir(parents=True)
    kept.write_text("{}")
    (reports / "study.json").write_text((first / "study.json").read_text())
    (moved / "study.json").write_text(json.dumps(legacy))
    (moved / "data").mkdir()
    (moved / "data" / "corpus.json").write_text('{"tasks": {}}')
    archive_study(moved, reports, echo=print)
    assert kept.is_file() and "another recipe" not in capsys.readouterr().out
    # The corpus's description goes with the copy (what --anchors-from checks against).
    assert (reports / "corpus.json").read_text() == '{"tasks": {}}'
    assert json.loads((reports / "study.json").read_text())["recipe"]["data"] == "OUT/data"
    # ...while a study of another corpus is refused, the committed copy left as it was.
    before = {path: path.read_bytes() for path in reports.rglob("*") if path.is_file()}
    with pytest.raises(DataError, match="another recipe \\(data differ\\).*--reports DIR"):
        archive_study(tmp_path / "third" / "study", reports, echo=print)
    assert {path: path.read_bytes() for path in reports.rglob("*") if path.is_file()} == before


def test_each_cost_row_is_built_as_its_variant_was_trained(tmp_path):
    from models.trainer.study.report import variant_overrides

    # Written out: an ablation binarizes its module type alone, dw-channel scales the
    # depthwise convolutions per channel, the others build the zoo model as it is.
    assert variant_overrides("bq-attention") == {"quantize_modules": "attention"}
    assert variant_overrides("bq-dw-channel") == {"depthwise_scale": "channel"}
    assert variant_overrides("bq-1L") == {} and variant_overrides("bq-single") == {}
    # and every training job of a study with them all gets the same, after the preset's
    # own (the smoke preset's one-layer model)
    from models.trainer.study.plan import model_overrides

    study = settings(tmp_path, ablations="all", sensitivity="all", scratch=True)
    trained = [job for job in build_plan(study) if job.kind == "train"]
    assert {job.variant for job in trained} >= {"bq-attention", "bq-dw-channel", "bq-scratch"}
    for job in trained:
        assert job.options["overrides"] == {**model_overrides(study),
                                            **variant_overrides(job.variant)}, job.key


def test_the_preset_choices_are_the_presets_defined():
    # --preset's choices are named in the settings, which the presets module imports (so
    # they cannot come from it); each must be a preset, and every preset a choice.
    from models.trainer.study.settings import PRESET_NAMES

    assert PRESET_NAMES == tuple(PRESETS)


def test_the_help_restates_the_presets_as_they_are():
    # The settings cannot import the presets (see above), so their help spells out the
    # presets' numbers: this keeps the words equal to the values.
    import dataclasses

    from models.trainer.data.sentences import KS_CLASSES
    from models.trainer.pretrain.settings import TINY
    from models.trainer.study.settings import MINIMUM_TASKS

    helps = {field.name: field.metadata["help"] + " " + (field.metadata["shown"] or "")
             for field in dataclasses.fields(StudySettings)}
    paper, small = PRESETS["paper"], PRESETS["small"]
    others = {preset.seeds for name, preset in PRESETS.items() if name != "paper"}
    assert len(others) == 1
    assert f"paper {paper.seeds}, the others {others.pop()}" in helps["seeds"]
    ungated = ",".join(task for task in paper.tasks if task not in paper.gated)
    assert f"paper {ungated} and {' '.join(paper.gated)} behind its gate" in helps["tasks"]
    assert f"the others {','.join(MINIMUM_TASKS)}" in helps["tasks"]
    ks_test = f"{paper.corpus.ks_per_class_test * len(KS_CLASSES):,}".replace(",", " ")
    assert paper.tasks[:3] == ("sd", "ks", "pr")
    assert (f"{paper.seeds} seeds, sd, ks at {ks_test} test clips, pr at "
            f"{paper.corpus.pr_test} test utterances, {' '.join(paper.gated)} gated"
            in helps["preset"]), helps["preset"]
    heads = {budget["steps"] for budget in small.superb_by_task.values()}
    assert len(heads) == 1 and small.train == {"tiny": True}
    assert tuple(small.superb_by_task) == ("asr", "sd", "pr", "sf")
    assert (f"small (train --tiny: {TINY['steps']} steps, minutes per run on 2 CPU cores; "
            f"the asr, sd, pr and sf heads {heads.pop()} steps" in helps["preset"])


def test_the_preset_help_says_the_hours_the_dry_run_plans(tmp_path):
    import re

    said = re.search(r"about (\d+) hours of 2 CPU cores",
                     dataclasses_help(StudySettings, "preset"))
    lines = []
    dry_run(settings(tmp_path, preset="paper", models="conformer-s,sparseformer-dn-s",
                     seeds=None, tasks=None), echo=lines.append)
    total = next(float(line.split()[1]) for line in lines if line.strip().startswith("total"))
    assert said and abs(total - int(said.group(1))) < 0.5, (said, total)


def dataclasses_help(settings_class, name):
    import dataclasses

    return next(field.metadata["help"] for field in dataclasses.fields(settings_class)
                if field.name == name)


def test_the_time_plan_prices_a_shared_extraction_once(tmp_path):
    """With state0, fp's KS job also trains fp-1L's head: it costs one extraction and two
    heads, and fp-1L's own job nothing (even where an older log priced it)."""
    from models.trainer.fileio import append_log
    from models.trainer.study.budget import MEASURED_EVALUATIONS, task_utterances
    from models.trainer.superb.task_table import SUPERB_TASKS

    study = settings(tmp_path, preset="paper", seeds=1, tasks="ks", sensitivity="state0")
    jobs = by_key(build_plan(study))
    per_utterance, per_step = MEASURED_EVALUATIONS["ks"]
    utterances = task_utterances(PRESETS["paper"].corpus, PRESETS["paper"].task_size, "ks")
    steps = (jobs["superb/conformer-s/seed-0/fp/ks"].options.get("steps")
             or SUPERB_TASKS["ks"].steps)
    assert job_seconds(jobs["superb/conformer-s/seed-0/fp/ks"], PRESETS["paper"]) == \
        pytest.approx(per_utterance * utterances + 2 * per_step * steps)
    assert job_seconds(jobs["superb/conformer-s/seed-0/fp-1L/ks"], PRESETS["paper"]) == 0.0
    log = tmp_path / "study" / "study.log.jsonl"
    log.parent.mkdir(parents=True)
    append_log(log, {"job": "superb/conformer-s/seed-1/fp-1L/ks", "seconds": 5000.0,
                     "shard": "1/1"})
    lines = []
    dry_run(study, echo=lines.append)
    assert not any("at the median time this study logged" in line for line in lines)


def test_deployed_scores_the_binarized_upstreams_only_and_is_part_of_the_recipe(tmp_path):
    from models.trainer.study.runner import record_study

    study = settings(tmp_path, tasks="ks", deployed=True)
    jobs = by_key(build_plan(study))
    binarized = {"bq", "bq-random"}
    for variant in ("fp", "bq", "random", "bq-random"):
        options = jobs[f"superb/conformer-s/seed-0/{variant}/ks"].options
        assert options.get("deployed", False) == (variant in binarized), variant
    assert record_study(study)["recipe"]["deployed"] is True
    with pytest.raises(DataError, match=r"other settings \(deployed\)"):
        record_study(settings(tmp_path, tasks="ks"))
    # A study from before the option records no such key, and still matches its recipe.
    assert "deployed" not in study_record(settings(tmp_path / "other"))["recipe"]


def test_deployed_heads_run_on_the_cpu_whatever_the_study_trains_on(tmp_path):
    jobs = by_key(build_plan(settings(tmp_path, deployed=True, device="cuda")))
    # The propagation measure runs the students deployed too, on the CPU.
    propagation = jobs["propagation/conformer-s/seed-0"].options
    assert propagation["deployed"] is True and propagation["device"] == "cpu"
    assert "deployed" not in by_key(build_plan(settings(tmp_path / "plain")))[
        "propagation/conformer-s/seed-0"].options
    assert jobs["train/conformer-s/seed-0/fp"].options["device"] == "cuda"
    assert jobs["superb/conformer-s/seed-0/fp/ks"].options["device"] == "cuda"
    for variant in ("bq", "bq-random"):
        assert jobs[f"superb/conformer-s/seed-0/{variant}/ks"].options["device"] == "cpu"


def test_the_time_plan_prices_binarized_extraction_slower_and_deployed_faster(tmp_path):
    paper = dict(preset="paper", seeds=1, tasks="ks")
    plain = by_key(build_plan(settings(tmp_path, **paper)))
    deployed = by_key(build_plan(settings(tmp_path / "d", deployed=True, **paper)))

    def price(jobs, variant):
        return job_seconds(jobs[f"superb/conformer-s/seed-0/{variant}/ks"], PRESETS["paper"])

    # KS at the paper size: 12 x (80 + 15 + 85) = 2 160 clips at 0.0205 s each (44.28 s),
    # 1 500 head steps at 0.00166 s (2.49 s); a binarized upstream's extraction 1.42x that
    # (the median KS factor of the committed studies); deployed 0.56 of a float upstream's
    # (the median of the paired deployed/float KS times measured on 2026-12-05).
    extraction, head = 2160 * 0.0205, 1500 * 0.00166
    for variant in ("fp", "random"):
        assert price(plain, variant) == pytest.approx(extraction + head)
        assert price(deployed, variant) == pytest.approx(extraction + head)
    for variant in ("bq", "bq-random"):
        assert price(plain, variant) == pytest.approx(1.42 * extraction + head)
        assert price(deployed, variant) == pytest.approx(0.56 * extraction + head)


def test_the_chains_students_start_their_scales_as_the_recipe_says(tmp_path):
    from models.trainer.study.runner import record_study

    jobs = by_key(build_plan(settings(tmp_path, sensitivity="single")))
    assert jobs["train/conformer-s/seed-0/bq"].options["student_scales"] == "teacher"
    # One stage from a float teacher has no teacher's scales to take: nothing to pass.
    assert "student_scales" not in jobs["train/conformer-s/seed-0/bq-single"].options
    assert "student_scales" not in jobs["train/conformer-s/seed-0/fp"].options
    data = by_key(build_plan(settings(tmp_path, student_scales="data")))
    assert data["train/conformer-s/seed-0/bq"].options["student_scales"] == "data"
    # The default is what studies from before the option ran: their record has no such key.
    assert "student_scales" not in study_record(settings(tmp_path))["recipe"]
    record_study(settings(tmp_path))
    with pytest.raises(DataError, match=r"other settings \(student_scales\)"):
        record_study(settings(tmp_path, student_scales="data"))
    assert record_study(settings(tmp_path / "new", student_scales="data"))["recipe"][
        "student_scales"] == "data"
