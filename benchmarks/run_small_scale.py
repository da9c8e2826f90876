"""Regenerate the small-scale training reports: reports/training/ and reports/table2.md.

For each model: ``profile-encoder train --model M --tiny --out RUNS/M`` (which synthesizes
its corpus into RUNS/M/data), then ``profile-encoder superb --task T --upstream RUNS/M``
for T in ks, sid, pr, and the same heads on a randomly initialized upstream of the same
shape (``--random-init M --data RUNS/M/data``). Everything goes through the real command
line, in subprocesses, timed.

    python benchmarks/run_small_scale.py                       # sparseformer-dn-s, BQ too
    python benchmarks/run_small_scale.py --models conformer-s
    python benchmarks/run_small_scale.py --reuse               # only rebuild the reports

Run folders (checkpoints, corpora) go to runs/small-scale/ (git-ignored); the reports are
small: results JSON, loss-curve PNG, copies of the JSONL logs, Table 2 in markdown.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the trainer's readers, from a checkout that is not installed
TASKS = ("ks", "sid", "pr")
PAPER_CSV = ROOT / "profiler" / "reference" / "table2.csv"


def cli(*args: str) -> None:
    """Run ``profile-encoder ARGS`` (as ``python -m profiler``); its run folder records its
    times."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    print("$ profile-encoder " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "profiler", *args], check=True, cwd=ROOT, env=env)


def run_model(model: str, runs: Path, reuse: bool, steps: int | None) -> dict:
    run = runs / model
    if not (reuse and (run / "metadata.json").is_file()
            and json.loads((run / "metadata.json").read_text()).get("finished")):
        if run.exists():
            import shutil

            shutil.rmtree(run)
        extra = ["--steps", str(steps)] if steps else []
        cli("train", "--model", model, "--tiny", "--out", str(run), *extra)
    results = {}
    for task in TASKS:
        for kind in ("trained", "random-init"):
            out = runs / f"{model}.{kind}.{task}"
            if not (reuse and (out / "results.json").is_file()):
                source = (["--upstream", str(run)] if kind == "trained"
                          else ["--random-init", model, "--data", str(run / "data")])
                cli("superb", "--task", task, *source, "--out", str(out))
            results[(task, kind)] = json.loads((out / "results.json").read_text())
    return {"run": run, "results": results}


def shown_path(path: str) -> str:
    """A path relative to the repository when it lies inside it (reports are committed)."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return path


def unit_prior_loss(run: Path) -> float:
    """Cross-entropy of always predicting the training units' frequencies (nats)."""
    import math
    from collections import Counter

    from models.trainer.manifest import read_labels

    counts = Counter(u for line in read_labels(run / "targets" / "train.km") for u in line.split())
    total = sum(counts.values())
    return -sum(c / total * math.log(c / total) for c in counts.values())


def loss_curve(logs: dict, priors: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, (key, title) in zip(axes, (("loss", "masked frames (HuBERT's loss)"),
                                       ("loss_unmasked", "unmasked frames"))):
        for model, entries in logs.items():
            train = [e for e in entries if e.get("split") == "train" and key in e]
            valid = [e for e in entries if e.get("split") == "valid" and key in e]
            line, = ax.plot([e["step"] for e in train], [e[key] for e in train], lw=1.0,
                            alpha=0.8, label=f"{model} train")
            ax.plot([e["step"] for e in valid], [e[key] for e in valid], "o--",
                    color=line.get_color(), lw=1.2, label=f"{model} valid")
            ax.axhline(priors[model], color=line.get_color(), ls=":", lw=1,
                       label=f"{model}: predicting the unit prior")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("cross-entropy against k-means units (nats)")
    axes[1].legend(fontsize=7)
    fig.suptitle("Small-scale pre-training (train --tiny, 250 steps): synthetic espeak-ng "
                 "speech, 2 CPU cores. Not comparable with LibriSpeech 960 h runs.", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def percent(value: float) -> str:
    return f"{100 * value:.1f}"


def table2(rows: list[dict], runs_info: dict, path: Path) -> None:
    from models.trainer.manifest import read_labels, read_manifest

    with open(PAPER_CSV, newline="") as handle:
        paper = list(csv.DictReader(handle))
    corpus = ROOT / next(iter(runs_info.values()))["corpus"]
    counts = {task: len(read_manifest(corpus / task / "test.tsv")) for task in ("ks", "sid")}
    counts["phonemes"] = sum(len(line.split()) for line in read_labels(corpus / "pr" / "test.phn"))
    lines = [
        "# Table 2, beside a small-scale reproduction of its KS / SID / PR columns",
        "",
        "Generated by `python benchmarks/run_small_scale.py`; do not edit by hand.",
        "",
        "**The two halves are not comparable numbers.** The paper pre-trains on LibriSpeech "
        "960 h with 32 A100 GPUs for 250k + 400k/600k steps and evaluates on the real SUPERB "
        "corpora (Speech Commands v1, VoxCeleb1, LibriSpeech phonemes). The rows measured "
        "here pre-train for minutes on two shared CPU cores (`train --tiny`: 250 steps of "
        "8 crops of at most 2 s, i.e. about 4 000 s of audio in total, 8 passes over a "
        "240-utterance, 10-minute corpus) on speech synthesized locally with espeak-ng, and "
        "evaluate on small synthetic KS/SID/PR sets (120 KS test clips of unseen speakers, "
        "40 SID test utterances of 8 speakers, 20 PR test sentences). They show that the "
        "pipeline works end to end and how a briefly pre-trained upstream compares with a "
        "random one of the same shape; they say nothing about the paper's accuracy.",
        "",
        "## Measured here (small scale, synthetic speech)",
        "",
        "| model | upstream | pre-training | KS acc % | SID acc % | PR PER % |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    by_model: dict = {}
    for row in rows:
        by_model.setdefault((row["model"], row["upstream"]), {})[row["task"]] = row
    for (model, upstream), tasks in by_model.items():
        info = runs_info.get(model, {})
        pre = (f"{info.get('steps')} steps, {info.get('train_minutes', 0):.1f} min"
               if upstream == "trained" else "none (random weights)")
        cells = []
        for task in TASKS:
            row = tasks.get(task)
            cells.append(percent(row["value"]) if row else "-")
        lines.append(f"| {model} | {upstream} | {pre} | " + " | ".join(cells) + " |")
    chance = {task: next((r["chance"] for r in rows if r["task"] == task), None) for task in TASKS}
    lines.append("| *chance* | | | " + " | ".join(
        percent(chance[t]) if chance[t] is not None else "-" for t in TASKS) + " |")
    lines += [
        "",
        "Chance: KS = 1/12 (uniform over the 12 balanced classes), SID = 1/number of "
        "speakers, PR = PER of answering every test sentence with the single most frequent "
        "training phoneme (an empty answer scores 100 %). PER can exceed 100 % only through "
        "insertions. Values are on the test split with the head chosen on the validation "
        f"split; one seed each, so differences of a few points are within noise (a KS test "
        f"clip is {100 / counts['ks']:.1f} points, a SID test utterance "
        f"{100 / counts['sid']:.1f}, and the PR test set has {counts['phonemes']} phonemes).",
        "",
        "## Paper (Jeon et al. 2023, Table 2; full scale)",
        "",
        "| model | precision | setup | KS acc % | SID acc % | PR PER % | ASR WER % | IC acc % "
        "| ER acc % |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in paper:
        lines.append(f"| {row['model']} | {row['precision']} | {row['setup']} | {row['ks_acc']} | "
                     f"{row['sid_acc']} | {row['pr_per']} | {row['asr_wer']} | {row['ic_acc']} | "
                     f"{row['er_acc']} |")
    lines += ["", "Paper values copied from `profiler/reference/table2.csv`.", ""]
    path.write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+",
                        default=["sparseformer-dn-s", "bq-sparseformer-dn-s"])
    parser.add_argument("--runs", default=str(ROOT / "runs" / "small-scale"))
    parser.add_argument("--reports", default=str(ROOT / "reports"))
    parser.add_argument("--steps", type=int, default=None, help="override --tiny's 250 steps")
    parser.add_argument("--reuse", action="store_true",
                        help="keep finished runs and evaluations; only redo what is missing")
    args = parser.parse_args()
    runs, reports = Path(args.runs), Path(args.reports)
    runs.mkdir(parents=True, exist_ok=True)
    training = reports / "training"
    training.mkdir(parents=True, exist_ok=True)

    rows, logs, priors, runs_info = [], {}, {}, {}
    for model in args.models:
        done = run_model(model, runs, args.reuse, args.steps)
        metadata = json.loads((done["run"] / "metadata.json").read_text())
        log_text = (done["run"] / "log.jsonl").read_text()
        (training / f"{model}.log.jsonl").write_text(log_text)
        logs[model] = [json.loads(line) for line in log_text.splitlines() if line.strip()]
        priors[model] = unit_prior_loss(done["run"])
        runs_info[model] = {"steps": metadata["step"],
                            "train_minutes": metadata["wall_seconds"] / 60,
                            "final_train_loss": metadata.get("final_train_loss"),
                            "final_valid": metadata.get("final_valid"),
                            "parameters": metadata["parameters"],
                            "clusters": metadata["targets"]["clusters"],
                            "unit_prior_loss": priors[model],
                            "corpus": shown_path(metadata["data"])}
        for (task, kind), result in done["results"].items():
            rows.append({"model": model, "upstream": kind, "task": task,
                         "metric": result["metric"], "value": result["value"],
                         "chance": result["chance"], "valid_value": result["valid_value"],
                         "layer_weights": result["layer_weights"],
                         "superb_wall_seconds": result["wall_seconds"]["total"]})

    loss_curve(logs, priors, training / "pretrain_loss.png")
    summary = {
        "what": "small-scale synthetic-speech results (train --tiny + superb); NOT comparable "
                "with the paper's LibriSpeech/SUPERB numbers",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "runs": runs_info, "results": rows,
    }
    (training / "results_small_scale.json").write_text(json.dumps(summary, indent=2,
                                                                  default=str) + "\n")
    table2(rows, runs_info, reports / "table2.md")
    print(f"wrote {training}/ and {reports / 'table2.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
