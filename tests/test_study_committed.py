"""The committed study (reports/study) checked from its own files, by code written here.

Every teacher-versus-random-init value in ``summary.json`` is recomputed from the committed
``per_item.json`` files, and one interval is redrawn by an independent two-stage bootstrap
(plain Python sampling, its own random stream): seeds with replacement, then the shared test
items with replacement. Monte Carlo error in both bootstraps allows a tolerance, not
equality; the values must match exactly.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

STUDY = Path(__file__).resolve().parents[1] / "reports" / "study"
# The sensitivity rebuild: its own teachers, defaults and variants, all from one run.
SENSITIVITY_STUDY = STUDY.parent / "study_sensitivity"
SUMMARY = STUDY / "summary.json"


def load(path: Path):
    return json.loads(path.read_text())


def evaluation(model: str, seed: int, variant: str, task: str, study: Path = STUDY):
    folder = study / "runs" / model / f"seed-{seed}" / "superb" / variant / task
    items = load(folder / "per_item.json")
    return items["numerators"], items["denominators"], load(folder / "results.json")


def score(numerators, denominators, counts=None):
    counts = counts or [1] * len(numerators)
    top = sum(c * n for c, n in zip(counts, numerators))
    bottom = sum(c * d for c, d in zip(counts, denominators))
    return top / bottom


def teacher_rows():
    if not SUMMARY.is_file():
        pytest.fail(f"{SUMMARY} is not committed")
    # A task not evaluated yet (ASR behind its gate) has a row without seeds.
    rows = [row for row in load(SUMMARY)["model_tasks"]
            if row.get("teacher_vs_random", {}).get("seeds")]
    assert rows, "summary.json compares no teacher with its random-init twin"
    return rows


def test_every_committed_score_is_its_per_item_ratio():
    for row in teacher_rows():
        for seed in row["teacher_vs_random"]["seeds"]:
            for variant in ("fp", row["teacher_vs_random"]["random_variant"]):
                numerators, denominators, results = evaluation(row["model"], seed, variant,
                                                               row["task"])
                # results.json rounds its value to 6 decimals, an accuracy from float32
                # (547 / 1 020 = 0.53627451 is 0.53627449 in float32, stored as 0.536274):
                # half a unit of the 6th decimal plus float32's rounding near 1
                assert score(numerators, denominators) == pytest.approx(results["value"],
                                                                        abs=5e-7 + 6e-8)


def test_every_teacher_versus_random_value_from_the_committed_items():
    for row in teacher_rows():
        entry = row["teacher_vs_random"]
        differences = []
        for seed in entry["seeds"]:
            teacher = evaluation(row["model"], seed, "fp", row["task"])
            random_init = evaluation(row["model"], seed, entry["random_variant"], row["task"])
            sign = 1.0 if teacher[2]["higher_is_better"] else -1.0
            differences.append(sign * (score(*teacher[:2]) - score(*random_init[:2])))
        assert entry["value"] == pytest.approx(sum(differences) / len(differences))


def redrawn_interval(model: str, task: str, seeds, random_variant: str, resamples=3000):
    """Seeds drawn with replacement (a seed's teacher and random runs together), then the
    test items with replacement, one draw for every seed; the 2.5 and 97.5 percentiles."""
    runs = {seed: (evaluation(model, seed, "fp", task),
                   evaluation(model, seed, random_variant, task)) for seed in seeds}
    sign = 1.0 if runs[seeds[0]][0][2]["higher_is_better"] else -1.0
    items = len(runs[seeds[0]][0][0])
    draw = random.Random(20261202)
    statistics = []
    for _ in range(resamples):
        counts = [0] * items
        for _ in range(items):
            counts[draw.randrange(items)] += 1
        chosen = [draw.choice(seeds) for _ in seeds]
        statistics.append(sum(sign * (score(*runs[s][0][:2], counts)
                                      - score(*runs[s][1][:2], counts)) for s in chosen)
                          / len(chosen))
    statistics.sort()
    return statistics[int(0.025 * resamples)], statistics[int(0.975 * resamples) - 1]


def test_one_seed_inclusive_interval_redrawn_independently():
    row = next((row for row in teacher_rows()
                if (row["model"], row["task"]) == ("conformer-s", "ks")), None)
    assert row is not None, "summary.json has no conformer-s KS teacher row"
    entry = row["teacher_vs_random"]
    low, high = redrawn_interval("conformer-s", "ks", entry["seeds"], entry["random_variant"])
    width = high - low
    # Both bootstraps are Monte Carlo (2 000 and 3 000 resamples): their percentiles differ
    # by a few per cent of the width; a wrong scheme (items not shared, seeds not paired,
    # a sign flipped) moves them by much more.
    tolerance = max(0.01, 0.15 * width)
    assert entry["interval"][0] == pytest.approx(low, abs=tolerance)
    assert entry["interval"][1] == pytest.approx(high, abs=tolerance)


README = STUDY.parents[1] / "README.md"


def readme_findings() -> dict[tuple[str, str], list[str]]:
    """The task table under the README's "What the study found", its cells by (task, run);
    a row with an empty task cell continues the task above it."""
    text = README.read_text()
    start = text.find("#### What the study found")
    assert start >= 0, "the README has no 'What the study found' section"
    rows, task = {}, None
    for line in text[start:].splitlines():
        if line.startswith("| ") and not line.startswith(("| task", "| ---")):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            task = cells[0].split()[0].lower() if cells[0] else task
            rows[task, cells[1]] = cells
        elif rows and not line.startswith("|"):
            break
    return rows


def first_number(cell: str) -> float:
    return float(cell.split()[0])


def mean_difference(pairs, higher_is_better: bool) -> float:
    """Points: mean over seeds of (first - second), signed so positive means the second is
    worse (first minus second for accuracies, second minus first for error rates)."""
    sign = 1.0 if higher_is_better else -1.0
    values = [sign * (score(*first[:2]) - score(*second[:2])) for first, second in pairs]
    return 100 * sum(values) / len(values)


def seeds_of(model: str, variant: str, task: str, study: Path = STUDY) -> list[int]:
    root = study / "runs" / model
    return sorted(int(folder.name.split("-")[1]) for folder in root.glob("seed-*")
                  if (folder / "superb" / variant / task / "per_item.json").is_file())


# The README's two runs of the study's recipe, by the name its table gives them.
README_RUNS = {"first": STUDY, "second": SENSITIVITY_STUDY}


@pytest.mark.parametrize("task, run", [("ks", "first"), ("ks", "second"), ("pr", "first"),
                                       ("pr", "second"), ("sd", "second")])
def test_the_readme_findings_are_the_committed_items(task, run):
    """The README's table of findings, recomputed here from the committed per-item files of
    the row's run: the FP -> BQ degradation of each encoder (mean over its seeds of FP minus
    BQ, signed so positive is BQ worse; the cell holds both, conformer-s first) and their
    contrast, to the table's one decimal."""
    cells = readme_findings()[task, run]
    study = README_RUNS[run]
    degradations = {}
    for cell, model in zip(cells[3].split(";"), ("conformer-s", "sparseformer-dn-s")):
        seeds = [s for s in seeds_of(model, "bq", task, study)
                 if s in seeds_of(model, "fp", task, study)]
        assert len(seeds) == 5, (model, task, run, seeds)
        pairs = [(evaluation(model, s, "fp", task, study), evaluation(model, s, "bq", task, study))
                 for s in seeds]
        degradations[model] = mean_difference(pairs, pairs[0][0][2]["higher_is_better"])
        assert first_number(cell) == pytest.approx(degradations[model], abs=0.051)
    contrast = degradations["conformer-s"] - degradations["sparseformer-dn-s"]
    assert first_number(cells[4]) == pytest.approx(contrast, abs=0.051)


def sensitivity_entries():
    summary = SENSITIVITY_STUDY / "summary.json"
    if not summary.is_file():
        pytest.fail(f"{summary} is not committed")
    entries = load(summary).get("sensitivity") or []
    assert {e["sensitivity"] for e in entries} == {"single", "state0", "dw-channel"}
    return entries


def degradation_points(model, task, seeds, reference, variant):
    pairs = [(evaluation(model, s, reference, task, SENSITIVITY_STUDY),
              evaluation(model, s, variant, task, SENSITIVITY_STUDY)) for s in seeds]
    return mean_difference(pairs, pairs[0][0][2]["higher_is_better"]) / 100


def test_every_sensitivity_row_from_the_committed_items():
    """Each sensitivity's FP -> BQ degradation and the default's on the same seeds, and
    the contrast of the two encoders, recomputed from the rebuild's per-item files: the
    variant pair's (e.g. fp-1L, bq-1L) and the defaults' (fp, bq), mean over the row's
    seeds; at least 2 seeds per row, or the row would carry no seed variance."""
    for entry in sensitivity_entries():
        for row in entry["degradation"]:
            seeds = row["seeds"]
            assert len(seeds) >= 2, (entry["sensitivity"], row["model"], seeds)
            assert row["degradation"] == pytest.approx(degradation_points(
                row["model"], row["task"], seeds, row["reference"], row["variant"]), abs=1e-9)
            assert row["default_degradation"] == pytest.approx(degradation_points(
                row["model"], row["task"], seeds, "fp", "bq"), abs=1e-9)
        contrast = entry["contrast"]
        for row in contrast["tasks"]:
            variant, default = [], []
            for model in (contrast["first"], contrast["second"]):
                seeds = row["seeds"][model]
                assert len(seeds) >= 2, (entry["sensitivity"], model, seeds)
                variant.append(degradation_points(model, row["task"], seeds,
                                                  *contrast["pairs"][model]))
                default.append(degradation_points(model, row["task"], seeds, "fp", "bq"))
            assert row["difference"] == pytest.approx(variant[0] - variant[1], abs=1e-9)
            assert row["default_difference"] == pytest.approx(default[0] - default[1],
                                                              abs=1e-9)
