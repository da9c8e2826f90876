"""profile-encoder study: bookkeeping (shards, resume), statistics, propagation metric,
ablation builds, the command line, and one end-to-end smoke study."""
import dataclasses
import json
import math
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from models.trainer.errors import DataError
from models.trainer.study.order import gate_jobs, parse_shard, shard_jobs, shard_of
from models.trainer.study.plan import (
    FINISHED,
    RECORDED,
    build_plan,
    command_words,
    corpus_tasks,
    job_state,
    run_folder,
)
from models.trainer.study.propagation import layer_errors
from models.trainer.study.runner import run_study
from models.trainer.study.settings import StudySettings
from models.trainer.study.stats import paired_difference, t_interval
from profiler.adapters import job_backend
from profiler.cli import build_parser, main


def settings(tmp_path, **changes):
    values = dict(out=str(tmp_path / "study"), preset="smoke", models="conformer-s,"
                  "sparseformer-dn-s,squeezeformer-xs", seeds=3, tasks="ks,pr", scratch=True,
                  ablations="all", progress=False)
    values.update(changes)
    return StudySettings(**values)


# ------------------------------------------------------------------------- bookkeeping
@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 9, 20])
def test_shards_cover_every_job_exactly_once_and_keep_chains_together(tmp_path, count):
    plan = build_plan(settings(tmp_path))
    keys = [job.key for job in plan]
    assert len(keys) == len(set(keys))
    taken = [job.key for index in range(1, count + 1)
             for job in shard_jobs(plan, f"{index}/{count}")]
    assert sorted(taken) == sorted(keys)
    by_key = {job.key: job for job in plan}
    for job in plan:
        for need in job.needs:
            other = by_key[need]
            # Only the corpus crosses shards; every other dependency is in the same shard.
            assert other.kind == "data" or shard_of(other, plan, count) == shard_of(
                job, plan, count)
            assert keys.index(need) < keys.index(job.key)


def test_the_plan_has_the_studys_matrix(tmp_path):
    plan = build_plan(settings(tmp_path, models="sparseformer-dn-s", seeds=2))
    train = [job for job in plan if job.kind == "train"]
    # fp, bq, bq-scratch, attention and feed-forward ablations (no convolution modules)
    assert sorted({job.variant for job in train}) == [
        "bq", "bq-attention", "bq-feed_forward", "bq-scratch", "fp"]
    assert len(train) == 5 * 2
    # the 5 trained variants and the 2 random-init anchors, x 2 seeds x 2 tasks
    assert len([job for job in plan if job.kind == "superb"]) == (5 + 2) * 2 * 2
    bq = next(job for job in train if job.variant == "bq")
    assert bq.options["model"] == "bq-sparseformer-dn-s"
    assert bq.options["teacher"].endswith("seed-0/fp")


def test_each_model_and_seed_evaluates_random_init_anchors_on_the_same_items(tmp_path):
    plan = build_plan(settings(tmp_path, models="conformer-s", seeds=2, scratch=False,
                               ablations="none"))
    by_key = {job.key: job for job in plan}
    for seed in (0, 1):
        for variant, zoo_name in (("random", "conformer-s"), ("bq-random", "bq-conformer-s")):
            job = by_key[f"superb/conformer-s/seed-{seed}/{variant}/ks"]
            assert job.options["random_init"] == zoo_name and "upstream" not in job.options
            assert job.options["seed"] == seed
            # the study's model shape (the smoke preset's one narrow layer)
            assert job.options["overrides"]["layers"] == 1
            assert job.needs == ("data",)           # no training to wait for
            assert str(job.path).endswith(f"seed-{seed}/superb/{variant}/ks")
            teacher = by_key[f"superb/conformer-s/seed-{seed}/fp/ks"]
            assert job.options["data"] == teacher.options["data"]      # the same test items
            assert job.options.get("steps") == teacher.options.get("steps")
            assert "--random-init" in command_words(job)
            assert job.options["chain"] is None


def test_only_encoders_with_convolutions_get_the_convolution_ablation(tmp_path):
    from models.trainer.study.summary import compared_pair

    plan = build_plan(settings(tmp_path, models="vanilla,conformer-s,squeezeformer-xs", seeds=1))
    ablated = {job.key.split("/")[1] for job in plan
               if job.kind == "train" and job.variant == "bq-convolution"}
    assert ablated == {"conformer-s", "squeezeformer-xs"}
    # The paper's comparison: an encoder with convolutions against an attention-only one.
    from models.trainer.study.collect import Study

    def study_of(names):
        return Study(tmp_path, {"models": names, "recipe": {"overrides": {}}}, [])

    assert compared_pair(study_of(["vanilla", "sparseformer-dn-s", "conformer-s"])) == (
        "conformer-s", "vanilla")
    assert compared_pair(study_of(["vanilla", "sparseformer-dn-s"])) == (
        "vanilla", "sparseformer-dn-s")


def test_small_preset_gives_sequence_heads_fewer_steps(tmp_path):
    from models.trainer.superb.task_table import SUPERB_TASKS

    plan = build_plan(settings(tmp_path, models="sparseformer-dn-s", seeds=1, preset="small",
                               tasks="ks,asr,sd,pr"))
    steps = {job.task: job.options.get("steps") for job in plan if job.kind == "superb"}
    assert steps["ks"] is None                       # the task's default
    for task in ("asr", "sd", "pr"):
        assert steps[task] == 500 < SUPERB_TASKS[task].steps


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0", ""])
def test_bad_shards(text):
    with pytest.raises(DataError, match="--shard"):
        parse_shard(text)


FAKE_CORPUS = {"format": "encoder-profiler-synth/1", "sample_rate": 16000,
               "tasks": {task: {"seed": 0} for task in ("pretrain", "ks", "pr", "asr")}}


def fake_runner(log):
    """Writes what marks each kind of job done, and records the job."""
    def run(job):
        log.append(job.key)
        if job.kind == "data":
            for task in ("pretrain", *corpus_tasks(job)):
                (job.path / task).mkdir(parents=True, exist_ok=True)
            (job.path / "corpus.json").write_text(json.dumps(FAKE_CORPUS))
        elif job.kind == "train":
            if job.options.get("chain"):           # a chain: chain.json, then its stages
                job.path.mkdir(parents=True, exist_ok=True)
                (job.path / "chain.json").write_text("{}")
            run_folder(job).mkdir(parents=True, exist_ok=True)
            (run_folder(job) / "config.json").write_text("{}")       # a run folder...
            (run_folder(job) / "metadata.json").write_text(json.dumps({"finished": True}))
        elif job.kind == "superb":       # the upstream as the superb command records it
            upstream = ({"kind": "random-init", "model": job.options["random_init"]}
                        if "random_init" in job.options else {"kind": "checkpoint"})
            for path in (job.path, job.options.get("also_without_state0")):
                if path is not None:
                    Path(path).mkdir(parents=True, exist_ok=True)
                    (Path(path) / "results.json").write_text(json.dumps({"upstream": upstream}))
        else:
            job.path.write_text(json.dumps({"students": {s: {} for s in job.options["students"]}}))
    return run


def test_resume_skips_finished_jobs_and_reruns_killed_ones(tmp_path):
    study = settings(tmp_path, models="conformer-s", seeds=2, scratch=False, ablations="none")
    plan = build_plan(study)
    first = []
    # Plan order (one model: seed by seed), the binarized random-init anchors last.
    late = [job.key for job in plan if job.variant == "bq-random"]
    assert late and run_study(study, runner=fake_runner(first))["ran"] == [
        job.key for job in plan if job.key not in late] + late
    assert all(job_state(job) == FINISHED for job in plan)
    again = []
    assert run_study(study, runner=fake_runner(again))["ran"] == [] and again == []
    # A training run killed mid-way (metadata not finished) and an evaluation killed before
    # its results.json: exactly these two run again.
    killed_train = next(j for j in plan if j.key == "train/conformer-s/seed-1/bq")
    (run_folder(killed_train) / "metadata.json").write_text(json.dumps({"finished": False}))
    killed_eval = next(j for j in plan if j.key == "superb/conformer-s/seed-0/fp/pr")
    (killed_eval.path / "results.json").unlink()
    third = []
    run_study(study, runner=fake_runner(third))
    assert third == [killed_eval.key, killed_train.key]   # in plan order


def _archived_study(tmp_path, **changes):
    """A finished (fake) study of conformer-s, two seeds, KS and PR, its committed copy in
    ``reports/``, and its folder then lost (a fresh machine)."""
    from models.trainer.study.archive import archive_study

    study = settings(tmp_path, **{"models": "conformer-s", "seeds": 2, "scratch": False,
                                  "ablations": "none", **changes})
    run_study(study, runner=fake_runner([]))
    reports = archive_study(Path(study.out), tmp_path / "reports", echo=lambda line: None)
    shutil.rmtree(study.out)
    return dataclasses.replace(study, restore_from=str(reports)), reports


def test_a_study_restored_from_its_committed_copy_trains_nothing_it_has(tmp_path):
    study, reports = _archived_study(tmp_path)
    ran = []
    run_study(study, runner=fake_runner(ran))
    assert ran == ["data"]                # the corpus (checked), nothing trained or evaluated
    assert all(job_state(job) in (FINISHED, RECORDED) for job in build_plan(study))
    # The log holds the copy's lines, this study's own (the corpus) in place of its.
    logged = [json.loads(line) for line in (Path(study.out) / "study.log.jsonl").open()]
    committed = [json.loads(line) for line in (reports / "study.log.jsonl").open()]
    assert sorted(entry["job"] for entry in logged) == sorted(e["job"] for e in committed)
    assert len(logged) > 1
    # One more seed: its jobs only, the restored seeds' teachers untouched.
    more = []
    run_study(dataclasses.replace(study, seeds=3), runner=fake_runner(more))
    assert more and all("seed-2" in key.split("/") for key in more)


def test_a_dry_run_of_a_restored_study_copies_nothing_and_plans_what_the_run_does(tmp_path):
    """With the corpus made, --dry-run --restore-from lists the committed runs as the run
    will find them (done, or records nothing reads) and writes no file; the run then
    restores them and runs exactly what the dry run left to do (one evaluation that the
    copy lacks, and the two trainings it reads)."""
    from models.trainer.study.runner import dry_run

    study, reports = _archived_study(tmp_path)
    shutil.rmtree(reports / "runs" / "conformer-s" / "seed-1" / "superb" / "bq" / "pr")
    made = next(job for job in build_plan(study) if job.kind == "data")
    fake_runner([])(made)                               # the corpus, as the run makes it

    def files():
        return sorted(path for path in Path(study.out).rglob("*"))

    before = files()
    lines = []
    dry_run(study, echo=lines.append)
    assert files() == before                            # nothing written
    states = {line.split("] ")[1].split(":")[0]: line.split("]")[0].strip("[ ")
              for line in lines if line.startswith("  [")}
    to_do = sorted(key for key, state in states.items() if state not in ("done", "record"))
    assert to_do == ["superb/conformer-s/seed-1/bq/pr"]
    assert ", 3 left" in lines[1]
    ran = []
    run_study(study, runner=fake_runner(ran))
    assert ran == ["train/conformer-s/seed-1/fp", "train/conformer-s/seed-1/bq",
                   "superb/conformer-s/seed-1/bq/pr"]


def test_a_report_folder_under_a_file_is_refused_before_a_file_is_copied(tmp_path):
    from models.trainer.errors import DataError
    from models.trainer.study.archive import archive_study

    study = settings(tmp_path, models="conformer-s", seeds=1, scratch=False, ablations="none")
    run_study(study, runner=fake_runner([]))
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="file is a file, not a folder"):
        archive_study(Path(study.out), tmp_path / "file" / "reports", echo=lambda line: None)


def test_a_study_restored_on_fewer_axes_keeps_the_copy_s_in_its_record(tmp_path):
    """Restored with one seed and one task, the study's record still lists the copy's two
    seeds and both tasks, and so does the report it writes back (a union, as a study
    grown by a rerun records it)."""
    from models.trainer.study.archive import archive_study

    study, reports = _archived_study(tmp_path)
    smaller = dataclasses.replace(study, seeds=1, tasks="ks")
    run_study(smaller, runner=fake_runner([]))
    record = json.loads((Path(study.out) / "study.json").read_text())
    assert (record["seeds"], record["tasks"]) == (2, ["ks", "pr"])
    (reports / "study.json").write_text(json.dumps({**record, "seeds": 3, "tasks": ["pr"]}))
    archive_study(Path(study.out), reports, echo=lambda line: None)
    kept = json.loads((reports / "study.json").read_text())
    assert (kept["seeds"], kept["tasks"]) == (3, ["pr", "ks"])


def test_an_evaluation_missing_from_the_copy_retrains_only_what_it_reads(tmp_path):
    study, reports = _archived_study(tmp_path)
    # The bq student's PR heads of seed 1 never made it into the copy: they read the
    # chain's last stage, which needs seed 1's fp teacher; nothing else is trained.
    shutil.rmtree(reports / "runs" / "conformer-s" / "seed-1" / "superb" / "bq" / "pr")
    ran = []
    run_study(study, runner=fake_runner(ran))
    assert ran == ["data", "train/conformer-s/seed-1/fp", "train/conformer-s/seed-1/bq",
                   "superb/conformer-s/seed-1/bq/pr"]


@pytest.mark.parametrize("beats_chance", [False, True])
def test_a_gated_evaluation_retrains_its_upstream_only_once_its_gate_passes(tmp_path,
                                                                          beats_chance):
    """The paper preset's ASR waits for its fp teacher's evaluation; with that restored and
    the student's heads missing, the chain and the two-iteration teacher it needs are
    trained again only if the teacher beats chance (WER's interval below the chance 1.0)."""
    study, reports = _archived_study(tmp_path, preset="paper", seeds=1, tasks="ks,asr")
    seed = reports / "runs" / "conformer-s" / "seed-0" / "superb"
    interval = [0.80, 0.90] if beats_chance else [0.95, 1.05]
    (seed / "fp" / "asr" / "results.json").write_text(json.dumps(
        {"upstream": {"kind": "checkpoint"}, "metric": "wer", "value": sum(interval) / 2,
         "interval": interval, "chance": 1.0, "higher_is_better": False}))
    shutil.rmtree(seed / "bq" / "asr")
    ran = []
    run_study(study, runner=fake_runner(ran))
    retrained = [f"train/conformer-s/seed-0/{run}" for run in ("fp-it1", "fp", "bq")]
    assert ran == ["data", *(retrained if beats_chance else []),
                   "superb/conformer-s/seed-0/bq/asr"]


def test_a_run_killed_while_trained_again_is_not_taken_for_done(tmp_path):
    """A rerun of the restoring command copies no record into a run folder that exists:
    the killed run (config.json written, no finished metadata) is trained again."""
    study, reports = _archived_study(tmp_path)
    run_study(study, runner=fake_runner([]))
    fp = next(job for job in build_plan(study) if job.key == "train/conformer-s/seed-1/fp")
    shutil.rmtree(fp.path)
    fp.path.mkdir()
    (fp.path / "config.json").write_text("{}")
    ran = []
    run_study(study, runner=fake_runner(ran))
    assert ran == [fp.key] and job_state(fp) == FINISHED


@pytest.mark.parametrize("change, needle", [
    ({"format": "encoder-profiler-synth/0"}, "corpus format"),
    ({"tasks": {**FAKE_CORPUS["tasks"], "ks": {"seed": 1}}}, "the ks corpus differs"),
    ({"tasks": {**FAKE_CORPUS["tasks"], "pretrain": {"seed": 1}}},
     "the pretrain corpus differs"),
])
def test_a_copy_of_another_corpus_is_refused_and_nothing_is_copied(tmp_path, change, needle):
    study, reports = _archived_study(tmp_path)
    (reports / "corpus.json").write_text(json.dumps({**FAKE_CORPUS, **change}))
    with pytest.raises(DataError, match=needle):
        run_study(study, runner=fake_runner([]))
    assert not (Path(study.out) / "runs").exists()


def test_a_copy_of_another_recipe_is_refused_before_anything_is_written(tmp_path):
    study, reports = _archived_study(tmp_path)
    with pytest.raises(DataError, match="other settings than this study's"):
        run_study(dataclasses.replace(study, steps=99), runner=fake_runner([]))
    assert not Path(study.out).exists()


# Freed memory glibc keeps: with heap allocation forced for 1 MiB blocks (mmap threshold
# 32 MiB) and automatic trimming off, 300 freed blocks pinned apart by small live ones stay
# resident until malloc_trim hands their pages back.
HEAP_PATTERN = """
import ctypes
from models.trainer.study.job_cost import release_freed_memory
def rss_mib():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2 ** 20
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.mallopt(-3, 32 << 20)    # M_MMAP_THRESHOLD
libc.mallopt(-1, 1 << 30)     # M_TRIM_THRESHOLD
held, pins = [], []
for _ in range(300):
    held.append(libc.malloc(1 << 20))
    ctypes.memset(held[-1], 1, 1 << 20)
    pins.append(libc.malloc(64))
for block in held:
    libc.free(block)
before = rss_mib()
print(release_freed_memory(), before, rss_mib())
"""


@pytest.mark.skipif(not Path("/proc/self/statm").is_file(), reason="needs Linux's /proc")
def test_the_heap_s_freed_pages_go_back_to_the_system():
    run = subprocess.run([sys.executable, "-c", HEAP_PATTERN], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    released, before, after = run.stdout.split()
    assert released == "True"                      # glibc (this project's Linux machines)
    assert float(before) - float(after) > 200       # of the 300 MiB freed


def test_the_runner_releases_freed_memory_after_every_job(tmp_path, monkeypatch):
    import models.trainer.study.runner as runner

    calls = []
    monkeypatch.setattr(runner, "release_freed_memory", lambda: calls.append(1))
    study = settings(tmp_path, models="conformer-s", seeds=1, scratch=False, ablations="none")
    ran = run_study(study, runner=fake_runner([]))["ran"]
    assert len(calls) == len(ran) > 0


def test_gate_only_runs_the_teacher_gate_then_the_same_command_resumes_the_rest(tmp_path):
    study = settings(tmp_path, models="conformer-s,sparseformer-dn-s", seeds=2, scratch=False,
                     ablations="none", tasks="ks")
    gate = []
    run_study(dataclasses.replace(study, gate_only=True), runner=fake_runner(gate))
    # The corpus, then seed by seed: each model's fp teacher, its heads, its random twin's.
    assert gate == ["data"] + [key for seed in (0, 1)
                               for model in ("conformer-s", "sparseformer-dn-s")
                               for key in (f"train/{model}/seed-{seed}/fp",
                                           f"superb/{model}/seed-{seed}/fp/ks",
                                           f"superb/{model}/seed-{seed}/random/ks")]
    rest = []
    run_study(study, runner=fake_runner(rest))
    assert not set(rest) & set(gate)
    assert sorted(gate + rest) == sorted(job.key for job in build_plan(study))
    # Seed by seed here too: no seed-1 job before the last seed-0 one; the binarized
    # random-init anchors, which no verdict reads, after every seed's other jobs.
    anchors = [key for key in rest if "/bq-random/" in key]
    assert len(anchors) == 2 * 2 and rest[-len(anchors):] == anchors
    for part in (rest[:-len(anchors)], anchors):
        seeds = [int(key.split("seed-")[1].split("/")[0]) for key in part]
        assert seeds == sorted(seeds)


def test_the_paper_preset_trains_teachers_by_hubert_s_two_iterations(tmp_path):
    from models.trainer.pretrain.settings import resolve_settings

    plan = build_plan(settings(tmp_path, preset="paper", models="conformer-s", seeds=1,
                               scratch=False, ablations="none", tasks="ks"))
    by_key = {job.key: job for job in plan}
    first = by_key["train/conformer-s/seed-0/fp-it1"]
    teacher = by_key["train/conformer-s/seed-0/fp"]
    # Iteration 1 on MFCC units, iteration 2 on its hidden state L/2 = 8 of 16, both with
    # the pre-training budget and 100 units.
    assert "targets" not in first.options and first.options["steps"] == 600
    assert teacher.needs == (first.key,) and teacher.options["steps"] == 600
    assert teacher.options["targets_from"] == str(first.path)
    resolved = resolve_settings("conformer-s", teacher.options["out"], **{
        k: v for k, v in teacher.options.items() if k not in ("model", "out", "overrides")})
    assert (resolved.iteration, resolved.label_layer, resolved.clusters) == (2, None, 100)
    assert ["--iteration", "2"] == command_words(teacher)[command_words(teacher).index(
        "--iteration"):][:2]
    # The student learns its teacher's units; no head reads the iteration-1 run.
    assert by_key["train/conformer-s/seed-0/bq"].options["teacher"] == str(teacher.path)
    assert not any(job.kind == "superb" and job.variant == "fp-it1" for job in plan)
    # --gate-only runs both iterations.
    gate = [job.key for job in gate_jobs(plan) if job.kind == "train"]
    assert gate == [first.key, teacher.key]
    synth = next(job for job in plan if job.kind == "data").options["synth"]
    assert (synth.more_voices, synth.rt60) == (True, 0.3)


def test_a_phone_target_preset_trains_its_teachers_on_phones(tmp_path, monkeypatch):
    from models.trainer.study import presets

    monkeypatch.setitem(presets.PRESETS, "smoke", dataclasses.replace(
        presets.PRESETS["smoke"], teachers="phones"))
    plan = build_plan(settings(tmp_path, models="conformer-s", seeds=1, scratch=True,
                               ablations="none", tasks="ks"))
    by_variant = {job.variant: job for job in plan if job.kind == "train"}
    assert by_variant["fp"].options["targets"] == "phones"
    assert by_variant["bq-scratch"].options["targets"] == "phones"
    assert "targets" not in by_variant["bq"].options     # its teacher's units


def test_a_preset_with_an_unknown_teacher_route_is_refused():
    from models.trainer.study import presets

    with pytest.raises(ValueError, match="'hubert-3'"):
        dataclasses.replace(presets.PRESETS["smoke"], teachers="hubert-3")


def test_the_reports_side_knows_the_anchors_and_sensitivity_variants(tmp_path):
    from models.trainer.study.collect import load_study

    study = settings(tmp_path, models="conformer-s", seeds=1, scratch=False,
                     ablations="none", sensitivity="single,state0", tasks="ks")
    run_study(study, runner=fake_runner([]))
    found = load_study(tmp_path / "study")
    assert found.variants == ["fp", "bq", "bq-single", "fp-1L", "bq-1L", "random",
                              "bq-random"]
    assert {variant for (_, variant, _) in found.results} == set(found.variants)
    assert found.random_variant("conformer-s") == "random"
    assert found.random_variant("conformer-s", binarized=True) == "bq-random"
    assert found.record["recipe"]["chains"]["bq-single"] == ["W32A32", "W1A1"]


def test_heads_without_state_zero_share_their_upstream_s_extraction(tmp_path, monkeypatch):
    """fp-1L's and bq-1L's heads train in fp's and bq's evaluations (one extraction of the
    upstream for both); their own jobs wait for those and run only if they did not write
    them. Not on a gated task for the fp teacher, whose heads the gate does not hold back."""
    from models.trainer.study import presets

    monkeypatch.setitem(presets.PRESETS, "smoke", dataclasses.replace(
        presets.PRESETS["smoke"], gated=("pr",)))
    study = settings(tmp_path, models="conformer-s", seeds=1, scratch=False,
                     ablations="none", sensitivity="state0", tasks="ks,pr")
    jobs = {job.key: job for job in build_plan(study)}
    head = "superb/conformer-s/seed-0/"
    for upstream in ("fp", "bq"):
        pair, alone = jobs[f"{head}{upstream}/ks"], jobs[f"{head}{upstream}-1L/ks"]
        assert pair.options["also_without_state0"] == str(alone.path)
        assert pair.key in alone.needs and alone.options["extracted_by"] == pair.key
        assert "--also-without-state0" in command_words(pair)
        assert "extracted_by" not in command_words(alone)
    gated_fp = jobs[f"{head}fp/pr"]
    assert "also_without_state0" not in gated_fp.options
    assert "extracted_by" not in jobs[f"{head}fp-1L/pr"].options
    assert jobs[f"{head}bq/pr"].options["also_without_state0"].endswith("bq-1L/pr")

    ran = run_study(study, runner=fake_runner([]))["ran"]
    assert f"{head}fp-1L/ks" not in ran and f"{head}bq-1L/ks" not in ran
    assert f"{head}fp-1L/pr" in ran          # the gated task's: on its own
    assert all(job_state(job) == FINISHED for job in jobs.values())


def test_a_closed_gate_closes_it_for_the_paired_heads_too(tmp_path):
    from models.trainer.study.job import Job
    from models.trainer.study.layout import GATED_FILE
    from models.trainer.study.runner import evaluate

    teacher = tmp_path / "fp" / "asr"
    teacher.mkdir(parents=True)
    (teacher / "results.json").write_text(json.dumps(
        {"metric": "wer", "value": 0.92, "interval": [0.9, 0.94], "chance": 0.904,
         "higher_is_better": False}))
    job = Job("superb/m/seed-0/bq/asr", "superb", tmp_path / "bq" / "asr", ("m", 0),
              variant="bq", task="asr",
              options={"gate": str(teacher), "also_without_state0": str(tmp_path / "bq-1L"
                                                                        / "asr"),
                       "paired_variant": "bq-1L", "chain": ["W32A32", "W1A1"]})
    evaluate(job, settings(tmp_path))
    for variant in ("bq", "bq-1L"):
        gated = json.loads((tmp_path / variant / "asr" / GATED_FILE).read_text())
        assert gated["variant"] == variant and "does not beat chance" in gated["reason"]


def test_growing_by_an_ablation_measures_its_new_student(tmp_path):
    study = settings(tmp_path, models="sparseformer-dn-s", seeds=1, scratch=False,
                     ablations="none", tasks="ks")
    run_study(study, runner=fake_runner([]))
    grown = []
    run_study(settings(tmp_path, models="sparseformer-dn-s", seeds=1, scratch=False,
                       ablations="attention", tasks="ks"), runner=fake_runner(grown))
    # The new student trains and is evaluated, and the propagation of that seed is measured
    # again so that it covers it; nothing that was finished reruns.
    assert grown == ["train/sparseformer-dn-s/seed-0/bq-attention",
                     "superb/sparseformer-dn-s/seed-0/bq-attention/ks",
                     "propagation/sparseformer-dn-s/seed-0"]


def test_a_changed_recipe_is_refused(tmp_path):
    study = settings(tmp_path, models="conformer-s", seeds=1, scratch=False, ablations="none")
    run_study(study, runner=fake_runner([]))
    with pytest.raises(DataError, match="other settings"):
        run_study(settings(tmp_path, models="conformer-s", seeds=1, scratch=False,
                           ablations="none", steps=99), runner=fake_runner([]))


# -------------------------------------------------------------------------- statistics
def test_t_interval_by_hand():
    # mean 2, s = 1, n = 3; t(0.975, 2 df) = 4.302653 (any t table)
    mean, low, high = t_interval([1.0, 2.0, 3.0])
    half = 4.302653 / math.sqrt(3)
    assert mean == 2.0 and low == pytest.approx(2 - half, abs=1e-5)
    assert high == pytest.approx(2 + half, abs=1e-5)
    assert t_interval([0.25]) == (0.25, None, None)


def test_paired_bootstrap_cancels_what_both_share():
    # Every item gets exactly one more error out of 10: on any resample of n items the
    # error rate rises by n / (10 n) = 0.1, however much the items differ between them.
    errors = np.array([3.0, 0.0, 5.0, 1.0, 9.0])
    lengths = np.full(5, 10.0)
    change, low, high = paired_difference([(errors, lengths)], [(errors + 1, lengths)])
    assert change == pytest.approx(0.1) and low == pytest.approx(0.1)
    assert high == pytest.approx(0.1)


def test_paired_bootstrap_two_items_by_hand():
    # Item 0 right before, wrong after; item 1 wrong in both. A resample holds item 0
    # k = 0, 1, 2 times (probabilities 1/4, 1/2, 1/4) and changes accuracy by -k/2: the
    # 2.5 % and 97.5 % quantiles are -1 and 0, the estimate -0.5.
    ones = np.ones(2)
    change, low, high = paired_difference([(np.array([1.0, 0.0]), ones)],
                                          [(np.array([0.0, 0.0]), ones)])
    assert (change, low, high) == (-0.5, -1.0, 0.0)


# ------------------------------------------------------------------------- propagation
def test_propagation_metric_on_hand_made_activations():
    teacher = torch.tensor([[[3.0, 4.0], [0.0, 1.0]]])          # (B=1, T=2, D=2)
    student = torch.tensor([[[3.0, 4.0], [1.0, 1.0]]])
    result = layer_errors([teacher, teacher], [teacher, student])
    # ||S - T|| = 1, ||T|| = sqrt(25 + 1); cosines: 1 and (0 + 1) / (sqrt(2) * 1)
    assert result["relative_error"] == pytest.approx([0.0, 1 / math.sqrt(26)])
    assert result["cosine"] == pytest.approx([1.0, (1 + 1 / math.sqrt(2)) / 2])
    with pytest.raises(ValueError, match="hidden states"):
        layer_errors([teacher], [teacher, student])


# --------------------------------------------------------------------------- ablations
# Which module names belong to each type (read from the encoders' attribute names).
OWNERS = {"attention": (".attention.",),
          "convolution": (".conv.", "time_reduction", "time_recovery"),
          "feed_forward": (".ffn1.", ".ffn2.", ".feed_forward.")}
QUANTIZED = {"W1A1", "A1A1"}


def binarized_macs(name, **overrides):
    import models
    import profiler

    model = models.build(name, device="meta", layers=2, **overrides).eval()
    profile = profiler.profile(model, torch.empty(1, 16000, device="meta"))
    return {module: dict(profile.module_bits(module)) for module in profile.modules
            if profile.module_bits(module)}


@pytest.mark.parametrize("model", ["conformer-s", "squeezeformer-xs", "sparseformer-dn-s"])
def test_ablation_builds_binarize_exactly_the_named_module_type(model):
    import models

    full = binarized_macs(f"bq-{model}")
    total = {kind: 0 for kind in OWNERS}
    for kind, owners in OWNERS.items():
        if kind == "convolution" and not models.config(model).family.has_convolution:
            # a build that would binarize nothing is refused, not built as a W1A1 no-op
            with pytest.raises(ValueError, match="would quantize nothing"):
                models.config(f"bq-{model}", quantize_modules=kind)
            continue
        modules = binarized_macs(f"bq-{model}", quantize_modules=kind)
        for module, bits in modules.items():
            owned = any(owner in f".{module}." or owner in module for owner in owners)
            if owned:   # this type: binarized exactly as in the full BQ build
                assert bits == full[module], module
            else:       # every other module: full precision
                assert not set(bits) & QUANTIZED, (kind, module, bits)
            total[kind] += bits.get("W1A1", 0)
    all_w1a1 = sum(bits.get("W1A1", 0) for bits in full.values())
    # The three types split the full BQ build's binary MACs between them.
    assert sum(total.values()) == all_w1a1 > 0
    if model == "sparseformer-dn-s":
        assert total["convolution"] == 0


def test_quantize_modules_spellings():
    import models

    config = models.config("bq-conformer-s", quantize_modules="feed-forward+attention")
    assert config.quantize_modules == ("attention", "feed_forward")
    assert models.config("bq-conformer-s").quantize_modules == (
        "attention", "convolution", "feed_forward")
    with pytest.raises(ValueError, match="quantize_modules"):
        models.config("bq-conformer-s", quantize_modules="pooling")


# ------------------------------------------------------------------------ command line
def test_help_explains_every_option():
    parser = build_parser("study")
    study = next(a for a in parser._subparsers._group_actions[0].choices.items()
                 if a[0] == "study")[1]
    for action in study._actions:
        if action.dest == "help":
            continue
        assert action.help and "default" in action.help, action.option_strings


@pytest.mark.parametrize("arguments, needle", [
    (["--shard", "0/2"], "--shard"),
    (["--models", "nope"], "unknown model 'nope'"),
    (["--models", "bq-conformer-s"], "full-precision"),
    (["--tasks", "ks,nope"], "unknown task 'nope'"),
    (["--ablations", "pooling"], "--ablations"),
    (["--seeds", "0"], "seeds"),
    (["--anchors-from", "/nonexistent/study"], "--anchors-from /nonexistent/study: no study"),
    (["--restore-from", "/nonexistent/reports"],
     "--restore-from /nonexistent/reports: no committed study"),
    (["--data", "/nonexistent/corpus"], "/nonexistent/corpus: data folder does not exist"),
    (["--deepspeed", "/nonexistent/ds.json"], "/nonexistent/ds.json: no such DeepSpeed config"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, arguments, needle):
    try:
        status = main(["study", "--out", str(tmp_path / "s"), "--dry-run", *arguments])
    except SystemExit as exit:      # argparse's own checks
        status = exit.code
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("profile-encoder")
    assert "error:" in err
    assert needle in err


@pytest.mark.parametrize("arguments, needle", [
    (["--data", "/nonexistent/corpus"], "data folder does not exist"),
    (["--deepspeed", "/nonexistent/ds.json"], "no such DeepSpeed config"),
    (["--out", "{file}/study"], "is a file, not a folder"),
])
def test_a_refused_study_writes_nothing(capsys, tmp_path, arguments, needle):
    """Not even its record: a study.json naming a corpus that does not exist would refuse
    the corrected command as another recipe."""
    (tmp_path / "file").write_text("")
    arguments = [a.replace("{file}", str(tmp_path / "file")) for a in arguments]
    assert main(["study", "--out", str(tmp_path / "s"), "--preset", "smoke", *arguments]) == 2
    assert needle in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["file"]


def test_report_without_a_study_is_one_line(capsys, tmp_path):
    assert main(["study", "--out", str(tmp_path / "none"), "--report",
                 "--reports", str(tmp_path / "reports")]) == 2
    assert "no such study record" in capsys.readouterr().err


# ---------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def smoke_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    arguments = ["study", "--out", str(root / "study"), "--preset", "smoke", "--models",
                 "sparseformer-dn-s", "--seeds", "1", "--tasks", "ks", "--scratch",
                 "--sensitivity", "state0", "--quiet"]
    assert main(arguments) == 0
    return root, arguments


@pytest.mark.slow
def test_a_deployed_smoke_study_scores_its_binarized_upstreams_on_packed_kernels(tmp_path):
    study = tmp_path / "study"
    arguments = ["study", "--out", str(study), "--preset", "smoke", "--models",
                 "conformer-s", "--seeds", "1", "--tasks", "ks", "--deployed", "--device",
                 "cpu", "--quiet"]
    assert main(arguments) == 0
    heads = study / "runs" / "conformer-s" / "seed-0" / "superb"
    for variant, deployed in (("fp", False), ("bq", True), ("random", False),
                              ("bq-random", True)):
        upstream = json.loads((heads / variant / "ks" / "results.json").read_text())["upstream"]
        assert ("deployed" in upstream) == deployed, variant
    assert main([*arguments, "--report", "--reports", str(tmp_path / "reports")]) == 0
    assert "scored deployed on packed 1-bit kernels" in (tmp_path / "reports" /
                                                          "README.md").read_text()


@pytest.mark.slow
def test_smoke_study_end_to_end(smoke_study):
    root, arguments = smoke_study
    study = root / "study"
    evaluation = study / "runs" / "sparseformer-dn-s" / "seed-0" / "superb" / "bq" / "ks"
    results = json.loads((evaluation / "results.json").read_text())
    # bq ran BiT's chain; its heads read the last stage.
    assert results["chain"] == ["W32A32", "W1A4", "W1A2", "W1A1"]
    assert results["upstream"]["run"].endswith("bq/stage-3-W1A1")
    items = json.loads((evaluation / "per_item.json").read_text())
    assert sum(items["numerators"]) / sum(items["denominators"]) == pytest.approx(
        results["value"], abs=1e-6)
    # bq-1L's heads trained in bq's job, from its extraction; the study recorded them
    # as bq-1L's, with bq's chain.
    layers_only = json.loads((evaluation.parent.parent / "bq-1L" / "ks" /
                              "results.json").read_text())
    assert layers_only["features_extracted_by"] == str(evaluation.resolve())
    assert layers_only["variant"] == "bq-1L" and layers_only["chain"] == results["chain"]
    assert len(layers_only["layer_weights"]) == len(results["layer_weights"]) - 1
    log = [json.loads(line)["job"] for line in (study / "study.log.jsonl").read_text()
           .splitlines() if "job" in json.loads(line)]
    assert "superb/sparseformer-dn-s/seed-0/bq/ks" in log
    assert not any(job.endswith("-1L/ks") for job in log)
    propagation = json.loads((study / "runs" / "sparseformer-dn-s" / "seed-0" /
                              "propagation.json").read_text())
    assert len(propagation["students"]["bq"]["relative_error"]) == 2   # input + 1 layer
    # The random-init anchors of the seed: the model's and the bq- model's shape, the same
    # test items as the teacher's.
    for variant, zoo_name in (("random", "sparseformer-dn-s"),
                              ("bq-random", "bq-sparseformer-dn-s")):
        anchor = evaluation.parent.parent / variant / "ks"
        upstream = json.loads((anchor / "results.json").read_text())["upstream"]
        assert upstream["kind"] == "random-init" and upstream["model"] == zoo_name
        assert upstream["layers"] == 1 and upstream["seed"] == 0
        assert json.loads((anchor / "per_item.json").read_text())["items"] == items["items"]
    assert main([*arguments, "--report", "--reports", str(root / "reports")]) == 0
    summary = json.loads((root / "reports" / "summary.json").read_text())
    teacher = summary["model_tasks"][0]["teacher_vs_random"]
    assert teacher["random_variant"] == "random" and teacher["seeds"] == [0]
    assert teacher["interval"][0] <= teacher["value"] <= teacher["interval"][1]
    readme = (root / "reports" / "README.md").read_text()
    for heading in ("Table 1", "Table 2", "degradation", "Error propagation",
                    "Cost against accuracy"):
        assert heading in readme
    assert "| sparseformer-dn-s | ks |" in readme
    # The from-scratch control beside the distilled student, with its interval and verdict.
    scratch = readme.split("## Distilled against from-scratch BQ")[1].split("\n## ")[0]
    row = next(line for line in scratch.splitlines() if line.startswith("| sparseformer-dn-s"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    # Model | Task | distilled | scratch | worse by | interval | items only | t over seeds |
    # p | Holm p | seeds | finding
    assert cells[1] == "ks" and cells[10] == "1"
    low, high = (float(x) for x in cells[5].strip("[]").split(","))
    assert low <= float(cells[4]) <= high
    assert cells[7] == "-"                     # one seed: no t interval over seeds
    # Holm p only where the task is informative (the teacher beat its random-init anchor).
    if teacher["informative"]:
        assert 0 < float(cells[9]) <= 1 and cells[11] != "not tested"
    else:
        assert cells[9] == "-" and cells[11] == "not tested"
    assert 0 < float(cells[8]) <= 1                # p
    # scratch worse by = distilled minus from-scratch accuracy, in points
    assert float(cells[4]) == pytest.approx(float(cells[2]) - float(cells[3]), abs=0.11)
    assert (root / "reports" / "cost_accuracy.png").stat().st_size > 0
    # The committed copy: every evaluation's results and per-item scores, no weights.
    copied = root / "reports" / evaluation.relative_to(study)
    assert json.loads((copied / "per_item.json").read_text()) == items
    assert json.loads((copied / "results.json").read_text()) == results
    assert not list((root / "reports").rglob("*.pt"))
    assert (root / "reports" / "propagation.png").stat().st_size > 0

    # A killed evaluation reruns; nothing else does.
    shutil.rmtree(evaluation)
    outcome = run_study(StudySettings(out=str(study), preset="smoke",
                                      models="sparseformer-dn-s", seeds=1, tasks="ks",
                                      progress=False), backend=job_backend())
    assert outcome["ran"] == ["superb/sparseformer-dn-s/seed-0/bq/ks"]
    assert (evaluation / "results.json").is_file()

    # A study that grows by a task synthesizes only that task's corpus: the files
    # its finished runs were trained and evaluated on stay as they were.
    ks_manifest = study / "data" / "ks" / "test.tsv"
    before = ks_manifest.stat().st_mtime_ns
    grown = run_study(StudySettings(out=str(study), preset="smoke",
                                    models="sparseformer-dn-s", seeds=1, tasks="ks,ic",
                                    progress=False), backend=job_backend())
    assert ks_manifest.stat().st_mtime_ns == before
    assert grown["ran"][0] == "data"
    assert {job.rsplit("/", 1)[-1] for job in grown["ran"][1:]} == {"ic"}
    assert "superb/sparseformer-dn-s/seed-0/fp/ic" in grown["ran"]
    ic = study / "runs" / "sparseformer-dn-s" / "seed-0" / "superb" / "bq" / "ic"
    assert (ic / "per_item.json").is_file() and (ic / "results.json").is_file()


@pytest.mark.slow
def test_each_job_logs_its_cpu_time_and_the_report_states_it(smoke_study, tmp_path):
    """A job's CPU time (every thread of the study process and its children) is positive
    for the training jobs and at most its wall time on every core there is."""
    import os

    from models.trainer.fileio import read_log

    root, arguments = smoke_study
    logged = read_log(root / "study" / "study.log.jsonl")
    assert logged and all("cpu_seconds" in entry for entry in logged)
    cores = os.cpu_count() or 1
    for entry in logged:
        assert 0 <= entry["cpu_seconds"] <= entry["seconds"] * cores + 0.5, entry
        if entry["job"].startswith("train/"):
            assert entry["cpu_seconds"] > 0, entry
    reports = tmp_path / "reports"
    assert main([*arguments, "--report", "--reports", str(reports)]) == 0
    by_job = {entry["job"]: entry["cpu_seconds"] for entry in logged}   # a rerun's last
    hours = sum(by_job.values()) / 3600
    readme = (reports / "README.md").read_text()
    assert (f"{len(by_job)} of its jobs also logged their CPU time: {hours:.2f} h, "
            f"{hours / 2:.2f} h of 2 cores, in ") in readme, readme[:900]
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["job_cpu_seconds"] == by_job
    assert summary["job_threads"] == {job: torch.get_num_threads() for job in by_job}
    # The job-time table: per kind (seed as *), jobs run and those alone on their cores,
    # by the rule worked here: CPU time >= 0.9 x threads x wall time.
    latest = {entry["job"]: entry for entry in logged}
    kinds = {}
    for job, entry in latest.items():
        kind = re.sub(r"/seed-\d+(/|$)", r"/seed-*\1", job)
        alone = entry["cpu_seconds"] >= 0.9 * entry["threads"] * entry["seconds"] > 0
        ran, was_alone = kinds.get(kind, (0, 0))
        kinds[kind] = (ran + 1, was_alone + alone)
    assert "## Job times" in readme
    # every entry names the machine's CPU (from /proc/cpuinfo), one here: no CPU column
    from profiler.calibration import cpu_name
    assert {entry["cpu"] for entry in logged} == {cpu_name()}
    for kind, (ran, alone) in kinds.items():
        assert f"| `{kind}` | {ran} | {ran} | {alone} | " in readme, (kind, readme)


def test_a_smoke_study_restored_into_a_fresh_folder_remakes_only_its_corpus(smoke_study,
                                                                            tmp_path):
    """The command line end to end on real runs: the committed copy of a finished study,
    restored into an empty folder, makes the corpus again (the same, as its check passes)
    and trains and evaluates nothing; the report from the restored folder is the same."""
    from models.trainer.fileio import read_log

    root, arguments = smoke_study
    reports = tmp_path / "reports"
    assert main([*arguments, "--report", "--reports", str(reports)]) == 0
    fresh = tmp_path / "fresh"
    again = [str(fresh) if word == str(root / "study") else word for word in arguments]
    assert again != arguments
    started = time.time()
    assert main([*again, "--restore-from", str(reports)]) == 0
    logged = read_log(fresh / "study.log.jsonl")
    assert [entry["job"] for entry in logged if entry["finished_at"] >= started] == ["data"]
    assert len(logged) == len(read_log(reports / "study.log.jsonl"))
    rebuilt = tmp_path / "rebuilt"
    assert main([*again, "--report", "--reports", str(rebuilt)]) == 0
    summaries = [json.loads((folder / "summary.json").read_text())
                 for folder in (rebuilt, reports)]
    for summary in summaries:            # the corpus's own time is this run's
        assert summary["job_seconds"].pop("data") > 0
        assert summary["job_cpu_seconds"].pop("data") > 0
    assert summaries[0] == summaries[1]


@pytest.mark.slow
def test_a_later_study_copies_the_anchors_it_shares_with_an_earlier_one(smoke_study,
                                                                        tmp_path, capsys):
    from models.trainer.study.anchors import reused_from
    from models.trainer.study.runner import planned_jobs, record_study, run_job

    root, arguments = smoke_study
    earlier = root / "study"
    # The committed copy of the earlier study serves as well: it holds its corpus.json.
    assert main([*arguments, "--report", "--reports", str(tmp_path / "reports")]) == 0
    assert (tmp_path / "reports" / "corpus.json").read_text() == (
        earlier / "data" / "corpus.json").read_text()
    later = StudySettings(out=str(tmp_path / "later"), preset="smoke",
                          models="sparseformer-dn-s", seeds=1, tasks="ks",
                          data=str(earlier / "data"), anchors_from=str(tmp_path / "reports"),
                          progress=False)
    plan = planned_jobs(later)
    anchors = [job for job in plan if reused_from(job)]
    assert sorted(job.variant for job in anchors) == ["bq-random", "random"]
    assert not any(reused_from(job) for job in plan if job not in anchors)
    assert main(["study", "--out", later.out, "--preset", "smoke", "--models",
                 "sparseformer-dn-s", "--seeds", "1", "--tasks", "ks", "--data",
                 later.data, "--anchors-from", later.anchors_from, "--dry-run"]) == 0
    listing = capsys.readouterr().out
    assert listing.count("(checked when it runs)") == 2
    assert "(2 anchor evaluations are copies from --anchors-from's study, priced at 0)" \
        in listing
    for job in anchors:
        run_job(job, later)
        source = tmp_path / "reports" / job.path.relative_to(later.out)
        copied = json.loads((job.path / "results.json").read_text())
        assert copied.pop("reused_from") == str(source.resolve())
        assert copied == json.loads((earlier / job.path.relative_to(later.out) /
                                     "results.json").read_text())
        assert (job.path / "per_item.json").read_text() == (source / "per_item.json").read_text()
        assert job_state(job) == FINISHED
    # Heads of another budget, or another corpus, are not the same evaluation: one line,
    # and nothing written for the job.
    other = dataclasses.replace(later, out=str(tmp_path / "other"), superb_steps=7)
    job = next(job for job in planned_jobs(other) if job.variant == "random")
    with pytest.raises(DataError, match=r"head steps \d+, here 7"):
        run_job(job, other)
    assert not job.path.exists()
    corpus = json.loads((earlier / "data" / "corpus.json").read_text())
    corpus["tasks"]["ks"]["seed"] = 1
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "corpus.json").write_text(json.dumps(corpus))
    moved = dataclasses.replace(later, out=str(tmp_path / "moved"), data=str(tmp_path / "data"))
    job = next(job for job in planned_jobs(moved) if job.variant == "bq-random")
    with pytest.raises(DataError, match="the ks corpus differs"):
        run_job(job, moved)
    assert not job.path.exists()
    # The later study's report says which anchors it copied.
    record_study(later)
    assert main(["study", "--out", later.out, "--report", "--reports",
                 str(tmp_path / "later-reports")]) == 0
    assert "(2 random-init anchor evaluations copied from an earlier study" in (
        tmp_path / "later-reports" / "README.md").read_text()
    summary = json.loads((tmp_path / "later-reports" / "summary.json").read_text())
    assert summary["study"]["anchors_copied"] == 2


def test_propagation_of_a_deployed_student_measures_its_deployed_copy(smoke_study,
                                                                      monkeypatch):
    from models.trainer.study import propagation
    from models.trainer.superb import runner

    root, _ = smoke_study
    seed = root / "study" / "runs" / "sparseformer-dn-s" / "seed-0"
    students = {"bq": str(seed / "bq" / "stage-3-W1A1")}
    deployed, deploy = [], runner.deployed_upstream
    monkeypatch.setattr(runner, "deployed_upstream",
                        lambda model: deployed.append(model) or deploy(model))
    packed = propagation.measure(str(seed / "fp"), students, 4, "cpu", deployed=True)
    simulated = propagation.measure(str(seed / "fp"), students, 4, "cpu")
    assert len(deployed) == 1
    assert "packed" in packed["students"]["bq"]["deployed"]
    assert "deployed" not in simulated["students"]["bq"]
    # Deploying changes the W1A1 products only: hidden state 0 (the float front end and
    # projection) is the same computation either way.
    assert packed["students"]["bq"]["relative_error"][0] == \
        simulated["students"]["bq"]["relative_error"][0]


@pytest.mark.parametrize("shard", ["1/2", " 1 / 2", "01/2"])
def test_shard_one_does_not_wait_for_the_corpus_it_makes_itself(tmp_path, shard):
    """The corpus is shard 1's job: however --shard spells 1 of 2, a corpus not made there
    is a failure to report, not another shard's work to wait for."""
    from models.trainer.errors import DataError
    from models.trainer.study.runner import wait_for

    study = settings(tmp_path, shard=shard)
    corpus = next(job for job in build_plan(study) if job.kind == "data")
    with pytest.raises(DataError, match="is not done; rerun the study"):
        wait_for(corpus, study, bar=None)
