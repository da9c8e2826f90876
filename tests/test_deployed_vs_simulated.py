"""benchmarks/deployed_vs_simulated.py's report from hand-made evaluations (no runs here):
the paired difference and the extraction speed-up worked by hand."""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import deployed_vs_simulated  # noqa: E402


def write(folder: Path, numerators, features_seconds: float) -> None:
    folder.mkdir(parents=True)
    value = sum(numerators) / len(numerators)
    (folder / "results.json").write_text(json.dumps({
        "task": "ks", "metric": "accuracy", "higher_is_better": True, "value": value,
        "wall_seconds": {"features": features_seconds}, "settings": {"steps": 40}}))
    (folder / "per_item.json").write_text(json.dumps({
        "items": [f"item-{i}" for i in range(len(numerators))], "numerators": numerators,
        "denominators": [1.0] * len(numerators)}))


def test_report_pairs_the_arms_by_seed(tmp_path):
    runs = tmp_path / "runs"
    # seed 0: 2/4 simulated, 3/4 deployed (+25 points); seed 1: 1/4 both (0 points)
    write(runs / "bq-x" / "seed-0" / "simulated" / "ks", [1, 0, 0, 1], 60.0)
    write(runs / "bq-x" / "seed-0" / "deployed" / "ks", [1, 1, 0, 1], 20.0)
    write(runs / "bq-x" / "seed-1" / "simulated" / "ks", [0, 0, 0, 1], 40.0)
    write(runs / "bq-x" / "seed-1" / "deployed" / "ks", [0, 0, 0, 1], 30.0)
    text = deployed_vs_simulated.report(runs, "")
    summary = next(line for line in text.splitlines() if line.startswith("| bq-x | 2 |"))
    cells = [cell.strip() for cell in summary.strip("|").split("|")]
    assert cells[2] == "+12.5"                 # (25 + 0) / 2
    assert cells[-1] == "2.00x"                # median 50 s against median 25 s
    per_seed = [line for line in text.splitlines() if line.startswith("| bq-x | 0 |")]
    assert per_seed == ["| bq-x | 0 | 50.0 | 75.0 | +25.0 | 60 | 20 |"]
    assert "for this task (40 steps)" in text


def test_a_studys_students_are_the_last_stage_of_each_chain_that_kept_a_checkpoint(tmp_path):
    study = tmp_path / "study"
    chain = study / "runs" / "conformer-s" / "seed-1" / "bq"
    for stage in ("stage-1-W1A4", "stage-2-W1A2", "stage-3-W1A1"):
        (chain / stage / "checkpoints").mkdir(parents=True)
    assert deployed_vs_simulated.student_folder(study, "bq-conformer-s", 1) == \
        chain / "stage-3-W1A1"
    # A seed restored from its record only (no checkpoint left) has no student to deploy.
    (study / "runs" / "conformer-s" / "seed-0" / "bq" / "stage-3-W1A1").mkdir(parents=True)
    assert deployed_vs_simulated.student_folder(study, "bq-conformer-s", 0) is None
    assert deployed_vs_simulated.student_folder(study, "bq-conformer-s", 2) is None


def test_the_report_says_which_upstreams_it_compared(tmp_path):
    runs = tmp_path / "runs"
    for arm in ("simulated", "deployed"):
        write(runs / "bq-x" / "seed-0" / arm / "ks", [1, 0, 0, 1], 10.0)
    assert "Upstreams: random-init `bq-` zoo models" in deployed_vs_simulated.report(runs, "")
    for arm in ("simulated", "deployed"):
        results = runs / "bq-x" / "seed-0" / arm / "ks" / "results.json"
        record = json.loads(results.read_text())
        results.write_text(json.dumps({**record, "upstream": {"kind": "checkpoint"}}))
    assert "Upstreams: the `bq` students of a study" in deployed_vs_simulated.report(runs, "")
