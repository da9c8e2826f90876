"""`profile-encoder sweep`: budgets, the grid and its skipped combinations, one point against
a hand-computed storage and MAC count, the Pareto front, the outputs, the study join, and
bad input as one line with exit status 2."""
import argparse
import csv
import json

import pytest

from models.quantization import W1A1, Quantization
from profiler.budgets import Budget
from profiler.cli import build_parser, main
from profiler.columns import KEYS
from profiler.sweep import (
    NO_BLOCK,
    NOT_DIVISIBLE,
    Grid,
    Point,
    SweepSettings,
    pareto_front,
    profile_point,
)

FP = Quantization()


@pytest.fixture(autouse=True)
def no_cache(monkeypatch):
    monkeypatch.setenv("PROFILE_ENCODER_CACHE", "off")


@pytest.mark.parametrize("text, quantity, limit, strict, catalog", [
    ("storage<=20MB", "storage", 20.0, False, None),
    ("storage < 1.5GB", "storage", 1500.0, True, None),
    ("storage<=300KB", "storage", 0.3, False, None),
    ("time<=2ms@h100-sxm", "time", 0.002, False, "h100-sxm"),
    ("time<=250us", "time", 250e-6, False, None),
    ("time<1s", "time", 1.0, True, None),
    ("flops<=50G", "flops", 50.0, False, None),
    ("bops<=1.5T", "bops", 1500.0, False, None),
    ("flops<=2e9", "flops", 2.0, False, None),
])
def test_budgets_parse_into_the_row_units(text, quantity, limit, strict, catalog):
    budget = Budget.parse(text)
    assert (budget.quantity, budget.strict, budget.catalog) == (quantity, strict, catalog)
    assert budget.limit == pytest.approx(limit)


def test_a_budget_is_held_against_its_column():
    row = {"storage_mb": 20.0, "est_time_s": 0.003, "est_time_s@h100-sxm": 0.001,
           "flop_g": 1.0, "bop_nonq_g": 40.0, "bop_bq_g": 20.0}
    assert Budget.parse("storage<=20MB").met(row, "a100")
    assert not Budget.parse("storage<20MB").met(row, "a100")
    assert Budget.parse("time<=2ms@h100-sxm").met(row, "a100")
    assert not Budget.parse("time<=2ms").met(row, "a100")
    assert not Budget.parse("time<=2ms@a100").met(row, "a100")   # the sweep's own catalog
    assert not Budget.parse("bops<=50G").met(row, "a100")        # 40 + 20 G


@pytest.mark.parametrize("text", ["storage=20MB", "storage<=20", "time<=2MB", "speed<=1s",
                                  "flops<=5G@a100", "storage<=MB", ""])
def test_a_budget_that_does_not_parse_is_a_value_error(text):
    with pytest.raises(ValueError, match="budget"):
        Budget.parse(text)


def test_invalid_combinations_are_skipped_and_counted():
    grid = Grid(("transformer", "sparseformer"), (1,), (64, 96), (4, 5), (FP, W1A1), (8, 16))
    points, skipped = grid.points()
    # dim 64 and 96 with heads 4 build (heads 5 divides neither): 2 dims x 2 bits per family;
    # the sparseformer once per block size, the transformer once, without one.
    assert len(points) == 2 * 2 * (2 + 1)
    assert {p.block_size for p in points if p.family == "transformer"} == {None}
    assert skipped[NOT_DIVISIBLE] == 2 * 2 * 2 * 2   # family x dims x bits x block sizes
    assert skipped[NO_BLOCK] == 2 * 2 * 1            # dims x bits x (2 block sizes - 1)
    assert len(points) + sum(skipped.values()) == 2 * 1 * 2 * 2 * 2 * 2


def test_a_config_the_zoo_rejects_is_skipped_with_its_reason():
    # The Sparseformer's 8 summary columns do not fit a block of 4.
    points, skipped = Grid(("sparseformer",), (1,), (64,), (4,), (FP,), (4, 8)).points()
    assert [p.block_size for p in points] == [8]
    assert sum(skipped.values()) == 1 and "sparse_block" in next(iter(skipped))


def test_one_point_against_a_hand_computed_storage_and_mac_count():
    """A 1-layer vanilla transformer of width 64, 4 heads, FFN 256, at 1 s (16 000 samples),
    FP32: everything written out from the model's description (models/hubert.py,
    models/frontends.py), not from the code."""
    dim, ffn, samples = 64, 256, 16_000
    # The "+FastConv" front end: (out channels, kernel, stride), no bias, GroupNorm after
    # the first conv (one group per channel: 2 x 64 parameters).
    convs = [(64, 10, 5), (128, 3, 2), (128, 1, 1), (128, 3, 2), (128, 1, 1), (256, 3, 2),
             (256, 1, 1), (256, 3, 2), (256, 1, 1), (512, 2, 2), (512, 1, 1), (512, 2, 2),
             (512, 1, 1)]
    length, channels, front_params, front_macs = samples, 1, 2 * 64, 0
    for out, kernel, stride in convs:
        length = (length - kernel) // stride + 1      # frames out of an unpadded conv
        front_params += out * channels * kernel
        front_macs += length * out * channels * kernel
        channels = out
    frames = length
    assert frames == 49
    linear = lambda n_in, n_out: n_in * n_out + n_out            # noqa: E731
    layer_norm = lambda n: 2 * n                                 # noqa: E731
    # Positional conv: kernel 128, 16 groups, padding 64 (one extra frame, trimmed after
    # the conv), weight-normalized over the kernel axis (g: 128 values), with bias.
    pos_kernel, pos_groups = 128, 16
    pos_params = dim * (dim // pos_groups) * pos_kernel + pos_kernel + dim
    pos_macs = (frames + 1) * dim * (dim // pos_groups) * pos_kernel
    layer_params = 4 * linear(dim, dim) + linear(dim, ffn) + linear(ffn, dim) + 2 * layer_norm(dim)
    layer_macs = (4 * frames * dim * dim          # Q, K, V and output projections
                  + 2 * frames * frames * dim     # Q K^T and attention x V, all heads
                  + 2 * frames * dim * ffn)       # the feed-forward's two linears
    params = (front_params + layer_norm(512) + linear(512, dim) + dim   # + mask embedding
              + pos_params + layer_norm(dim) + layer_params
              + linear(dim, 256) + 500 * 256)   # final projection and label embeddings
    macs = front_macs + frames * 512 * dim + pos_macs + layer_macs

    settings = SweepSettings(1.0, "bayesian-bits", "a100", "roofline")
    row = profile_point(Point("transformer", 1, dim, 4, FP), settings)
    assert (row["family"], row["layers"], row["dim"], row["heads"], row["ffn_dim"]) == (
        "transformer", 1, dim, 4, ffn)
    assert row["params"] == params
    assert row["storage_mb"] == pytest.approx(params * 4 / 1e6, rel=1e-12)
    assert row["macs"] == macs
    assert set(KEYS) - {"model"} <= set(row)


def test_the_pareto_front_keeps_the_rows_nothing_beats_on_both():
    rows = [{"id": i, "est_time_s": t, "storage_mb": s}
            for i, (t, s) in enumerate([(1, 10), (2, 5), (2, 4), (3, 6), (4, 1), (5, 1)])]
    assert [r["id"] for r in pareto_front(rows)] == [0, 2, 4]


def test_the_study_chart_draws_the_same_front_over_its_points():
    from models.trainer.study.charts import pareto_front as chart_front

    # (cost, error): (1, 5), (2, 2), (3, 1), (4, 0.5) each beat every costlier point's error
    points = [(3, 1), (1, 5), (2, 2), (2, 6), (4, 0.5), (1, 7)]
    assert chart_front(points) == [1, 2, 0, 4]


def _sweep_help_actions():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["sweep"]._actions


def test_every_sweep_option_states_its_default():
    for action in _sweep_help_actions():
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help and "default" in action.help, action.option_strings


@pytest.mark.parametrize("args, message", [
    (["--budget", "storage=<20MB"], "budget"),
    (["--budget", "time<=2ms@nowhere"], "nowhere"),
    (["--family", "mamba"], "unknown encoder family 'mamba'"),
    (["--dim", "65", "--heads", "4"], "empty grid"),
    (["--layers", ","], "expected a comma-separated list"),
    (["--bits", "W0A1"], "weight_bits"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, args, message):
    argv = ["sweep", "--out", str(tmp_path)]
    if "--family" not in args:
        argv += ["--family", "transformer"]
    try:
        status = main(argv + args)
    except SystemExit as error:   # argparse's own errors
        status = error.code
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "sweep.csv").exists()


@pytest.mark.parametrize("where, message", [
    ("file/sweep", "file is a file, not a folder"),
    ("file", "file is a file, not a folder"),
    ("taken", "taken/sweep.json: it is a folder"),
])
def test_an_output_it_cannot_write_is_refused_before_profiling(capsys, tmp_path, where,
                                                               message):
    (tmp_path / "file").write_text("")
    (tmp_path / "taken" / "sweep.json").mkdir(parents=True)
    status = main(["sweep", "--family", "transformer", "--layers", "1", "--dim", "64",
                   "--heads", "2", "--out", str(tmp_path / where)])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""       # nothing profiled, nothing written
    assert len(captured.err.strip().splitlines()) == 1 and message in captured.err
    assert not (tmp_path / "taken" / "sweep.csv").exists()


def test_a_sweep_writes_csv_json_and_the_figure_in_parallel(tmp_path, capsys):
    status = main(["sweep", "--family", "transformer,sparseformer", "--layers", "1",
                   "--dim", "64", "--heads", "2,3", "--bits", "W32A32,W1A1",
                   "--block-size", "8,16", "--seconds", "0.5", "--workers", "2",
                   "--budget", "storage<=1GB", "--budget", "time<=1s@h100-sxm",
                   "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0
    assert "6 points profiled" in out and "skipped" in out
    with open(tmp_path / "sweep.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    for key in (*KEYS, "family", "bits", "block_size", "params", "macs", "meets_budgets",
                "on_pareto_front", "est_time_s@h100-sxm"):
        assert key in rows[0], key
    assert all(r["meets_budgets"] == "True" for r in rows)
    record = json.loads((tmp_path / "sweep.json").read_text(encoding="utf-8"))
    assert record["settings"]["budgets"] == ["storage<=1GB", "time<=1s@h100-sxm"]
    assert len(record["points"]) == 6 and record["skipped"]
    # Parallel rows are in grid order and equal to profiling the same point here.
    first = record["points"][0]
    alone = profile_point(Point("transformer", 1, 64, 2, FP),
                          SweepSettings(0.5, "bayesian-bits", "a100", "roofline", ("h100-sxm",)))
    assert {k: first[k] for k in alone} == alone
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_accuracy_joins_a_study_s_measured_values(tmp_path, capsys):
    study = tmp_path / "study"
    overrides = {"layers": 1, "dim": 64, "heads": 2}
    (study).mkdir()
    (study / "study.json").write_text(json.dumps(
        {"recipe": {"overrides": overrides}, "models": ["vanilla"], "seeds": 2,
         "tasks": ["ks"], "scratch": False, "ablations": []}), encoding="utf-8")
    for seed, (fp, bq) in enumerate([(0.9, 0.6), (0.8, 0.5)]):
        for variant, value in (("fp", fp), ("bq", bq)):
            folder = study / "runs" / "vanilla" / f"seed-{seed}" / "superb" / variant / "ks"
            folder.mkdir(parents=True)
            (folder / "results.json").write_text(json.dumps(
                {"task": "ks", "metric": "accuracy", "value": value}), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["sweep", "--family", "transformer", "--layers", "1,2", "--dim", "64",
                 "--heads", "2", "--bits", "W32A32,W1A1", "--seconds", "0.5", "--workers", "1",
                 "--accuracy", str(study), "--out", str(out)]) == 0
    assert "2 of 4 points measured" in capsys.readouterr().out
    rows = json.loads((out / "sweep.json").read_text(encoding="utf-8"))["points"]
    by_point = {(r["layers"], r["bits"]): r["ks_accuracy"] for r in rows}
    assert by_point[(1, "W32A32")] == pytest.approx(0.85)
    assert by_point[(1, "W1A1")] == pytest.approx(0.55)
    assert by_point[(2, "W32A32")] is None and by_point[(2, "W1A1")] is None


def test_the_figure_draws_the_tightest_budget_of_each_quantity(tmp_path, monkeypatch):
    """Two time budgets on the sweep's catalog: the line drawn is the stricter (2 ms, in s),
    whichever comes last; a budget on another catalog draws nothing."""
    from profiler import figures, sweep

    drawn = {}
    monkeypatch.setattr(figures, "storage_vs_time",
                        lambda rows, path, catalog, limits: drawn.update(limits))
    budgets = [Budget.parse("time<=2ms"), Budget.parse("time<=5ms"),
               Budget.parse("storage<=40MB"), Budget.parse("time<=1ms@h200")]
    sweep.write_outputs([{"model": "x"}], tmp_path, {}, budgets, "a100")
    assert drawn == {"time": Budget.parse("time<=2ms").limit,
                     "storage": Budget.parse("storage<=40MB").limit}
    assert drawn["time"] == pytest.approx(0.002)
