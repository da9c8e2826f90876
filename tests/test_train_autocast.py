"""--autocast: training's forward passes in bfloat16 (mixed precision), recorded with the
run and the study's recipe; float32 is the peer each bfloat16 number is checked against."""
import json
import math

import pytest
import torch
from train_fixtures import TINY_MODEL, TINY_OVERRIDE_ARGS, tiny_corpus, train_settings

from models.trainer.autocast import autocast
from models.trainer.errors import DataError
from models.trainer.fileio import read_log
from models.trainer.pretrain import checkpoint as ckpt
from models.trainer.pretrain.loop import pretrain
from models.trainer.pretrain.settings import settings_for_resume

# bfloat16 keeps 8 bits of mantissa: one rounding is at most 2^-8 relative; a loss after
# a few layers of bfloat16 products stays within a few of them of float32's.
BFLOAT16_STEP = 2.0 ** -8


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus(tmp_path_factory.mktemp("corpus"))


def test_the_context_runs_products_in_bfloat16_and_nothing_without_it():
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(3, 8)
    with autocast("bf16", "cpu"):
        assert layer(x).dtype == torch.bfloat16
    with autocast(None, "cpu"):
        assert layer(x).dtype == torch.float32
    with pytest.raises(ValueError, match="bf16"):
        autocast("fp8", "cpu")


def test_a_cpu_that_would_emulate_bfloat16_is_warned_once(monkeypatch, capsys):
    from models.trainer import autocast as module

    # /proc/cpuinfo's flags as a CPU without bfloat16 instructions gives them (AVX2 only),
    # read once per process, not on every training step
    reads = []
    monkeypatch.setattr("profiler.calibration.cpu_flags",
                        lambda: reads.append(1) or frozenset({"avx2", "fma"}))
    monkeypatch.setattr(module, "_cpu_checked", False)
    for _ in range(3):
        with autocast("bf16", "cpu"):
            pass
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [module.EMULATED_WARNING] and len(reads) == 1
    assert "without bfloat16 instructions" in err[0]
    # AVX-512 BF16 or AMX: nothing said; without --autocast: nothing either
    for flags in ({"avx2", "avx512_bf16"}, {"amx_bf16"}):
        monkeypatch.setattr("profiler.calibration.cpu_flags", lambda flags=flags: frozenset(flags))
        monkeypatch.setattr(module, "_cpu_checked", False)
        with autocast("bf16", "cpu"):
            pass
    with autocast(None, "cpu"):
        pass
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("model", [TINY_MODEL, "bq-" + TINY_MODEL])
def test_a_bfloat16_run_tracks_its_float32_twin_and_records_the_choice(tmp_path, corpus, model):
    logs = {}
    for name, choice in (("float32", None), ("bf16", "bf16")):
        run = tmp_path / name
        pretrain(train_settings(run, corpus, model=model, steps=2, save_every=2,
                                autocast=choice))
        logs[name] = [r for r in read_log(run / ckpt.LOG) if r["split"] == "train"]
        metadata = json.loads((run / ckpt.METADATA).read_text())
        assert metadata["settings"]["autocast"] == choice
        # Weights and optimizer state stay float32 under mixed precision.
        weights = ckpt.load_model_file(ckpt.latest_checkpoint(run))["model"]
        assert {v.dtype for v in weights.values()
                if torch.is_tensor(v) and v.is_floating_point()} == {torch.float32}
    first = logs["float32"][0]["loss"], logs["bf16"][0]["loss"]
    # Same data, masks and initial weights: step 1's loss differs by bfloat16 rounding only,
    # and it differs (the products did run in bfloat16).
    assert first[0] != first[1]
    assert abs(first[1] - first[0]) <= 8 * BFLOAT16_STEP * abs(first[0])


def test_a_run_resumes_only_in_its_own_precision(tmp_path, corpus):
    run = tmp_path / "run"
    pretrain(train_settings(run, corpus, steps=2, save_every=2))
    with pytest.raises(DataError, match="autocast was None"):
        settings_for_resume(run, {"autocast": "bf16"})


def test_an_unknown_precision_is_one_line_and_exit_2(cli, tmp_path):
    result = cli("train", "--model", TINY_MODEL, *TINY_OVERRIDE_ARGS, "--out", tmp_path / "r",
                 "--autocast", "fp8", "--quiet")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "fp8" in lines[0] and "bf16" in lines[0], result.stderr
    assert not (tmp_path / "r").exists()


def test_the_study_trains_in_bfloat16_extracts_in_float32_and_records_it(tmp_path):
    from models.trainer.study.plan import build_plan, command_words
    from models.trainer.study.recipe import study_record
    from models.trainer.study.runner import record_study
    from models.trainer.study.settings import StudySettings

    def settings(**changes):
        return StudySettings(**{**dict(out=str(tmp_path / "study"), preset="smoke",
                                       models="conformer-s", seeds=1, tasks="ks",
                                       progress=False), **changes})

    jobs = {job.key: job for job in build_plan(settings(autocast="bf16"))}
    for variant in ("fp", "bq"):
        train = jobs[f"train/conformer-s/seed-0/{variant}"]
        assert train.options["autocast"] == "bf16"
        words = command_words(train)
        assert words[words.index("--autocast") + 1] == "bf16"
        assert "--autocast" not in command_words(jobs[f"superb/conformer-s/seed-0/{variant}/ks"])
    assert record_study(settings(autocast="bf16"))["recipe"]["autocast"] == "bf16"
    with pytest.raises(DataError, match=r"other settings \(autocast\)"):
        record_study(settings())
    # A study from before the option records no such key, and still matches its recipe.
    assert "autocast" not in study_record(settings(out=str(tmp_path / "other")))["recipe"]


def test_the_time_plan_prices_bfloat16_training_at_the_measured_gain(tmp_path, monkeypatch):
    from models.trainer.study import budget
    from models.trainer.study.budget import job_seconds
    from models.trainer.study.plan import build_plan
    from models.trainer.study.presets import PRESETS
    from models.trainer.study.settings import StudySettings

    def plan(**changes):
        study = StudySettings(out=str(tmp_path / "study"), preset="paper", models="conformer-s",
                              seeds=1, tasks="ks", progress=False, **changes)
        return {job.key: job_seconds(job, PRESETS["paper"]) for job in build_plan(study)}

    monkeypatch.setattr(budget, "cpu_has_bfloat16", lambda: True)     # AVX-512 BF16 or AMX
    float32, bf16 = plan(), plan(autocast="bf16")
    # 600 steps of 8 x 2 s at 0.56 s per 16 s of audio, over the gain measured in the
    # training loop (its lower end, 1.13), after 15 s to start the run; the chain's 3 x
    # (15 s + 100 steps at 1.04 s), unchanged (distillation's gain was not measured). The
    # teacher's k-means labelling before its second iteration (83 s, a float32 feature pass
    # stopped at the label layer) does not move either.
    assert bf16["train/conformer-s/seed-0/fp-it1"] == pytest.approx(15.0 + 336.0 / 1.13)
    assert bf16["train/conformer-s/seed-0/fp"] == pytest.approx(15.0 + 336.0 / 1.13 + 83.0)
    assert bf16["train/conformer-s/seed-0/bq"] == pytest.approx(3 * (15.0 + 104.0))
    assert float32["train/conformer-s/seed-0/fp"] == pytest.approx(15.0 + 336.0 + 83.0)
    # The heads' extraction stays float32, so their price does not move.
    assert bf16["superb/conformer-s/seed-0/fp/ks"] == float32["superb/conformer-s/seed-0/fp/ks"]
    # Where the CPU emulates bfloat16: float32's time over 0.12 (0.976 / 7.923 s a step on
    # such a CPU), distillation's too
    monkeypatch.setattr(budget, "cpu_has_bfloat16", lambda: False)
    emulated = plan(autocast="bf16")
    assert emulated["train/conformer-s/seed-0/fp-it1"] == pytest.approx(15.0 + 336.0 / 0.12)
    assert emulated["train/conformer-s/seed-0/bq"] == pytest.approx(3 * (15.0 + 104.0 / 0.12))
    assert plan() == float32


def test_bfloat16_extraction_stays_within_its_rounding_of_float32_and_returns_float32():
    from train_fixtures import TINY_OVERRIDES

    import models
    from models.trainer.superb.heads import extract_features

    model = models.build(TINY_MODEL, **TINY_OVERRIDES).eval()
    torch.manual_seed(0)
    sizes = [8_000, 6_400, 7_001]

    class Utterances(list):
        lengths = sizes

    dataset = Utterances({"waveform": torch.randn(n)} for n in sizes)
    float32, bf16 = (extract_features(model, dataset, pool=False, batch_size=2,
                                      device=torch.device("cpu"), progress=False, desc="",
                                      autocast=choice) for choice in (None, "bf16"))
    for exact, mixed in zip(float32, bf16):
        assert mixed.dtype == torch.float32 and mixed.shape == exact.shape
        assert not torch.equal(mixed, exact)
        # One layer of bfloat16 products: the states' error is a few roundings of their size.
        error = (mixed - exact).norm() / exact.norm()
        assert error <= 8 * BFLOAT16_STEP


def test_superb_records_bfloat16_extraction_and_refuses_it_deployed(tmp_path, cli):
    from train_fixtures import TINY_OVERRIDES

    from models.trainer.superb.runner import run_superb
    from models.trainer.superb.settings import SuperbSettings

    data = tiny_corpus(tmp_path / "corpus", tasks=("ks",))
    saved = run_superb(SuperbSettings(task="ks", out=str(tmp_path / "eval"),
                                      random_init=TINY_MODEL, overrides=dict(TINY_OVERRIDES),
                                      data=str(data), steps=10, eval_every=5,
                                      autocast="bf16", progress=False))
    assert saved["settings"]["extraction_autocast"] == "bf16"
    result = cli("superb", "--task", "ks", "--out", tmp_path / "deployed", "--random-init",
                 "bq-" + TINY_MODEL, "--deployed", "--autocast", "bf16", "--quiet",
                 *TINY_OVERRIDE_ARGS)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "do not combine" in result.stderr and not (tmp_path / "deployed").exists()


def test_a_chain_distills_under_bfloat16_and_each_stage_records_it(tmp_path, corpus):
    from models.trainer.distill.chain import run_chain
    from models.trainer.pretrain.settings import resolve_settings

    teacher = tmp_path / "teacher"
    pretrain(train_settings(teacher, corpus, steps=2, save_every=2))
    student = tmp_path / "student"
    run_chain(resolve_settings(TINY_MODEL, student, teacher=str(teacher), chain="W32A32,W1A2,W1A1",
                               steps=2, batch_size=2, crop_seconds=0.5, warmup_steps=1,
                               save_every=2, log_every=1, valid_every=2, progress=False,
                               autocast="bf16"))
    stages = sorted(student.glob("stage-*"))
    assert [stage.name for stage in stages] == ["stage-1-W1A2", "stage-2-W1A1"]
    for stage in stages:
        metadata = json.loads((stage / ckpt.METADATA).read_text())
        assert metadata["settings"]["autocast"] == "bf16"
        lines = [r for r in read_log(stage / ckpt.LOG) if r["split"] == "train"]
        assert all(math.isfinite(r["distill_hidden"]) and r["distill_hidden"] > 0
                   for r in lines)
