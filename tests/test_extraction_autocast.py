"""benchmarks/extraction_autocast.py: the twins it runs (from the study's own plan) and its
report from hand-made evaluations, the paired difference worked by hand."""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import extraction_autocast  # noqa: E402


def write(folder: Path, numerators, features_seconds: float) -> None:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({
        "task": "ks", "metric": "accuracy", "higher_is_better": True,
        "value": sum(numerators) / len(numerators),
        "wall_seconds": {"features": features_seconds}}))
    (folder / "per_item.json").write_text(json.dumps({
        "items": [f"item-{i}" for i in range(len(numerators))], "numerators": numerators,
        "denominators": [1.0] * len(numerators)}))


def test_report_pairs_the_precisions_by_seed(tmp_path):
    runs = tmp_path / "runs"
    # seed 0: 2/4 in float32, 3/4 in bf16 (+25 points); seed 1: 1/4 both (0 points)
    for seed, float32, bf16 in ((0, [1, 0, 0, 1], [1, 1, 0, 1]), (1, [0, 0, 0, 1], [0, 0, 0, 1])):
        cell = runs / "m" / f"seed-{seed}" / "fp" / "ks"
        write(cell / "float32", float32, 60.0 + seed)
        write(cell / "bf16", bf16, 30.0 + seed)
    text = extraction_autocast.report(runs, "")
    row = next(line for line in text.splitlines() if line.startswith("| m | fp | ks | 2 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[4] == "+12.5"                 # (25 + 0) / 2
    assert cells[-1] == "60 / 30"              # medians of 60, 61 and 30, 31, rounded
    assert "| m | fp | ks | 0 | 50.0 | 75.0 |" in text


def test_twins_rerun_the_studys_own_commands_with_bfloat16(tmp_path, monkeypatch):
    from models.trainer.study.plan import build_plan
    from models.trainer.study.settings import StudySettings

    study = tmp_path / "study"
    settings = StudySettings(out=str(study), preset="smoke", models="conformer-s", seeds=1,
                             tasks="ks", progress=False)
    for job in build_plan(settings):            # mark the evaluations finished
        if job.kind == "superb":
            job.path.mkdir(parents=True)
            (job.path / "results.json").write_text("{}")
    jobs = extraction_autocast.study_jobs(["--out", str(study), "--preset", "smoke",
                                           "--models", "conformer-s", "--seeds", "1",
                                           "--tasks", "ks"])
    calls = []
    monkeypatch.setattr(extraction_autocast.subprocess, "run",
                        lambda words, check: calls.append(words))
    extraction_autocast.run_twins(study, jobs, ["fp", "random"])
    assert len(calls) == 2
    for words in calls:
        assert words[-3:] == ["--autocast", "bf16", "--quiet"]
        out = Path(words[words.index("--out") + 1])
        assert out.parent.parent == study / "extraction-bf16" / "conformer-s" / "seed-0"
        assert out.parent.name in ("fp", "random") and out.name == "ks"
    fp = next(w for w in calls if "--upstream" in w)
    assert fp[fp.index("--upstream") + 1] == str(study / "runs" / "conformer-s" / "seed-0" / "fp")
    random = next(w for w in calls if "--random-init" in w)
    assert random[random.index("--random-init") + 1] == "conformer-s"


def test_the_committed_report_is_rebuilt_from_its_runs(tmp_path):
    committed = ROOT / "reports" / "training" / "extraction_autocast.md"
    runs = committed.with_suffix("") / "runs"
    load = (committed.with_suffix("") / "load.txt").read_text().strip()
    assert extraction_autocast.report(runs, load) == committed.read_text()
