"""benchmarks/autocast_pilot.py: the prediction interval by hand, and a bfloat16 seed judged
against float32 draws from study folders laid out as the study commits them."""
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import autocast_pilot  # noqa: E402


def test_the_prediction_interval_of_one_more_draw_by_hand():
    # 1, 2, 3: mean 2, sd 1; t(2) at 0.975 is 4.3027; half-width 4.3027 sqrt(1 + 1/3).
    mean, spread, low, high = autocast_pilot.prediction_interval([1.0, 2.0, 3.0])
    assert (mean, spread) == (2.0, 1.0)
    assert high - mean == pytest.approx(4.3027 * math.sqrt(4 / 3), abs=1e-3)
    assert mean - low == pytest.approx(high - mean)


def _seed(study: Path, model: str, seed: int, over_prior: float, teacher: float,
          random: float) -> None:
    folder = study / "runs" / model / f"seed-{seed}"
    for variant in ("fp-it1", "fp"):
        (folder / variant).mkdir(parents=True)
        (folder / variant / "metadata.json").write_text(
            json.dumps({"final_valid": {"acc_over_prior": over_prior}}))
    for variant, value in (("fp", teacher), ("random", random)):
        path = folder / "superb" / variant / "pr" / "results.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"value": value, "higher_is_better": False}))


def test_a_seed_outside_the_float32_draws_is_counted_and_anchors_are_compared(tmp_path):
    fp32, bf16 = tmp_path / "fp32", tmp_path / "bf16"
    # Float32 PER of the teachers 0.70, 0.72, 0.74 against random-init 0.80: the teacher
    # is better by 10, 8 and 6 points (mean 8, sd 2).
    for seed, teacher in enumerate((0.70, 0.72, 0.74)):
        _seed(fp32, "m", seed, 0.05, teacher, 0.80)
    _seed(bf16, "m", 0, 0.05, 0.71, 0.80)      # 9 points: inside
    _seed(bf16, "m", 1, 0.05, 0.20, 0.81)      # 61 points: far outside; anchor differs
    rows, counts, checks = autocast_pilot.compare(bf16, [fp32], ["pr"])
    by_quantity = dict(zip([row.split(" | ")[1] for row in rows], counts))
    assert by_quantity["pr: teacher - random-init"] == (1, 2)
    assert by_quantity["pr: teacher's PER %"] == (1, 2)
    row = next(r for r in rows if "teacher - random-init" in r)
    assert "3, +8.0, 2.0" in row and "seed 0: +9.0; seed 1: +61.0" in row
    assert [c[4] for c in checks] == [True, False]
