"""benchmarks/study_gpu.py without a GPU: its help, and its dry run lists one process per
(model, seed) whose jobs are the study's own training jobs at the GPU's batch and crops."""
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "study_gpu.py"


def load_script():
    spec = importlib.util.spec_from_file_location("study_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_script().main(["--help"])
    assert exit_info.value.code == 0
    assert "--dry-run" in capsys.readouterr().out


def test_dry_run_lists_the_studys_training_jobs_per_process(tmp_path, capsys):
    from models.trainer.study.plan import build_plan
    from models.trainer.study.settings import StudySettings

    out = tmp_path / "study"
    assert load_script().main(["--out", str(out), "--preset", "smoke", "--seeds", "2",
                               "--batch-size", "16", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    processes = [line for line in lines if line.startswith("process ")]
    assert processes == ["process conformer-s seed 0:", "process conformer-s seed 1:",
                         "process sparseformer-dn-s seed 0:",
                         "process sparseformer-dn-s seed 1:"]
    jobs = [line for line in lines if line.startswith("  [")]
    # The same training jobs and folders as the CPU study, so that it resumes after them.
    study = build_plan(StudySettings(out=str(out), preset="smoke", seeds=2, progress=False))
    planned = [job for job in study if job.kind == "train"]
    assert len(jobs) == len(planned) == 8
    for job in planned:
        line = next(line for line in jobs if f"] {job.key}: " in line)
        assert f"--out {job.path}" in line and "--batch-size 16" in line
        assert "--crop-seconds 4.0" in line and "--device cuda" in line
        if job.variant == "bq":
            assert "--chain W32A32,W1A4,W1A2,W1A1" in line
    assert not out.exists()                                  # a dry run writes nothing


def test_bad_input_is_one_line(tmp_path, capsys):
    assert load_script().main(["--out", str(tmp_path), "--models", "nope", "--dry-run"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_its_recipe_is_the_cpu_study_s_with_or_without_deployed(tmp_path):
    """The CPU study resumes after the GPU script only if their recipes match; --deployed
    is part of it."""
    from models.trainer.study.recipe import study_record
    from models.trainer.study.settings import StudySettings

    script = load_script()
    out = str(tmp_path / "study")
    for extra, deployed in (([], False), (["--deployed"], True)):
        gpu = script.study_settings(script.parse_arguments(["--out", out, *extra]))
        cpu = StudySettings(out=out, deployed=deployed, progress=False)
        assert study_record(gpu)["recipe"] == study_record(cpu)["recipe"]
    assert study_record(gpu)["recipe"]["deployed"] is True


def test_its_recipe_carries_autocast_and_its_training_commands_use_it(tmp_path):
    from models.trainer.study.recipe import study_record
    from models.trainer.study.settings import StudySettings

    script = load_script()
    out = str(tmp_path / "study")
    gpu = script.parse_arguments(["--out", out, "--autocast", "bf16", "--models", "conformer-s",
                                  "--seeds", "1"])
    cpu = StudySettings(out=out, autocast="bf16", models="conformer-s", seeds=1,
                        progress=False)
    assert study_record(script.study_settings(gpu))["recipe"] == study_record(cpu)["recipe"]
    for chain in script.training_chains(gpu).values():
        for _, _, words in chain:
            assert words[words.index("--autocast") + 1] == "bf16"


def test_its_recipe_carries_the_chains_scale_rule_to_the_bq_command(tmp_path):
    from models.trainer.study.recipe import study_record
    from models.trainer.study.settings import StudySettings

    script = load_script()
    out = str(tmp_path / "study")
    gpu = script.parse_arguments(["--out", out, "--student-scales", "data", "--models",
                                  "conformer-s", "--seeds", "1"])
    cpu = StudySettings(out=out, student_scales="data", models="conformer-s", seeds=1,
                        progress=False)
    assert study_record(script.study_settings(gpu))["recipe"] == study_record(cpu)["recipe"]
    commands = [words for chain in script.training_chains(gpu).values()
                for _, _, words in chain if "--chain" in words]
    assert commands and all(words[words.index("--student-scales") + 1] == "data"
                            for words in commands)


def _write_log(folder: Path, lines: list) -> None:
    import json

    folder.mkdir(parents=True)
    (folder / "log.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_run_progress_reads_a_chain_s_stages_and_its_last_validation(tmp_path):
    chain = tmp_path / "bq"
    _write_log(chain / "stage-1-W1A4", [
        {"split": "train", "step": 50, "step_seconds": 0.2},
        {"split": "train", "step": 100, "step_seconds": 0.4},
        {"split": "valid", "step": 100, "acc_over_prior": 0.05, "acc_over_prior_se": 0.01}])
    _write_log(chain / "stage-2-W1A2", [  # stopped at step 30, no validation yet
        {"split": "train", "step": 30, "step_seconds": 0.3}])
    progress = load_script().run_progress(chain)
    # 100 + 30 steps; median of 0.2, 0.4, 0.3; the last validation is stage 1's
    assert progress == {"steps": 130, "stage": "stage-2-W1A2", "step_seconds": 0.3,
                        "valid_step": 100, "acc_over_prior": 0.05, "acc_over_prior_se": 0.01}
    assert load_script().run_progress(tmp_path / "never-started") == {}


def test_it_synthesizes_the_pretraining_corpus_alone(tmp_path):
    from models.trainer.study.plan import build_plan

    module = load_script()
    settings = module.study_settings(module.parse_arguments(["--out", str(tmp_path)]))
    data = next(job for job in build_plan(settings) if job.kind == "data")
    assert "pretrain" in data.options["tasks"] and len(data.options["tasks"]) > 1
    cut = module.pretraining_corpus(data)
    assert cut.options["tasks"] == ["pretrain"] and cut.path == data.path
    assert cut.options["sizes"] == data.options["sizes"]  # the same pre-training corpus


def test_it_trains_end_to_end_and_the_cpu_study_takes_the_runs_over(tmp_path, capsys):
    """A real run on the CPU (the smoke preset, one model): every training job finishes,
    the reports say what ran, and the CPU study's plan finds those runs done."""
    import json

    from models.trainer.study.plan import FINISHED, build_plan, job_state
    from models.trainer.study.settings import StudySettings

    out, reports = tmp_path / "study", tmp_path / "reports"
    assert load_script().main(["--out", str(out), "--preset", "smoke", "--seeds", "1",
                               "--models", "conformer-s", "--device", "cpu",
                               "--batch-size", "4", "--crop-seconds", "1",
                               "--reports", str(reports)]) == 0
    record = json.loads((reports / "summary.json").read_text())
    assert {key: value["status"] for key, value in record["jobs"].items()} == {
        "train/conformer-s/seed-0/fp": "ok", "train/conformer-s/seed-0/bq": "ok"}
    assert record["jobs"]["train/conformer-s/seed-0/bq"]["stage"] == "stage-3-W1A1"
    # the smoke preset's own batch and crop (2 x 0.5 s) beside the ones run here
    summary = (reports / "summary.md").read_text()
    assert "batch 4 x 1 s crops (the CPU study's: 2 x 0.5 s)" in summary
    study = build_plan(StudySettings(out=str(out), preset="smoke", seeds=1,
                                     models="conformer-s", progress=False))
    assert [job_state(job) for job in study if job.kind == "train"] == [FINISHED, FINISHED]


def test_a_failed_job_names_its_error_and_the_run_exits_1(tmp_path, capsys):
    import json

    reports = tmp_path / "reports"
    # the GPU's default batch of 32 is more than the smoke corpus's utterances
    assert load_script().main(["--out", str(tmp_path / "study"), "--preset", "smoke",
                               "--seeds", "1", "--models", "conformer-s", "--device", "cpu",
                               "--reports", str(reports)]) == 1
    status = json.loads((reports / "summary.json").read_text())["jobs"][
        "train/conformer-s/seed-0/fp"]["status"]
    assert status.startswith("exit 2: profile-encoder: error: the pre-training corpus has ")
    assert "fewer than one step's 32" in status
    assert "1 training job(s) failed" in capsys.readouterr().err
