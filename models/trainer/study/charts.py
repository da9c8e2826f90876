"""The study's figures: cost against accuracy (with the Pareto front), error against depth."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from profiler.figures import save_png
from profiler.sweep import pareto_front as sweep_pareto_front

from .settings import BQ_VARIANT

# The accuracy axis: ASR WER if measured, else the first error rate found, else accuracy.
PREFERRED_TASKS = ("asr", "pr", "sd", "ks", "sid")


def pareto_front(points: List[Tuple[float, float]]) -> List[int]:
    """Indices of the (cost, error) points no other point beats on both (lower is better),
    by increasing cost: the sweep's front, on these points."""
    rows = [{"cost": cost, "error": error, "index": index}
            for index, (cost, error) in enumerate(points)]
    return [row["index"] for row in sweep_pareto_front(rows, x="cost", y="error")]


def cost_accuracy_figure(study, costs: Dict, path: Path) -> Optional[str]:
    """Estimated time against the error of one task; returns the caption or None."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    task = next((t for t in PREFERRED_TASKS if any(
        study.values((m, v, t)) for m in study.models for v in study.variants)), None)
    if task is None:
        return None
    info = study.task_info(task)
    labels, points = [], []
    for (model, variant), row in costs.items():
        values = study.values((model, variant, task))
        if values:
            error = float(np.mean(values))
            points.append((row["est_time_s"] * 1e4,
                           1 - error if info["higher_is_better"] else error))
            labels.append(f"{model} {variant}")
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.scatter([p[0] for p in points], [100 * p[1] for p in points], color="tab:blue")
    for label, (x, y) in zip(labels, points):
        ax.annotate(label, (x, 100 * y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    front = pareto_front(points)
    ax.step([points[i][0] for i in front], [100 * points[i][1] for i in front], where="post",
            color="tab:red", lw=1.2, marker="o", markersize=11, markerfacecolor="none",
            label="Pareto front")
    what = info["metric"].upper() if not info["higher_is_better"] else "error (1 - accuracy)"
    ax.set_xlabel("estimated time (1e-4 s; paper model, A100, 10 s input)")
    ax.set_ylabel(f"{task} {what} % (small-scale synthetic)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path, dpi=130)
    plt.close(fig)
    return (f"Task {task}, mean over seeds; the red steps join the runs no other run beats "
            f"on both cost and error.")


def propagation_figure(rows: List[Dict], path: Path) -> None:
    """Relative error of each hidden state against depth, one line per (model, student)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    colors = {}
    for row in rows:
        color = colors.setdefault(row["model"], f"C{len(colors)}")
        style = "-" if row["variant"] == BQ_VARIANT else "--"
        ax.plot(range(len(row["curve"])), row["curve"], style, color=color, marker=".",
                label=f"{row['model']} {row['variant']}")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("hidden state (0: encoder input, k: after layer k)")
    ax.set_ylabel("relative error ||h_BQ - h_FP|| / ||h_FP||")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_png(fig, path, dpi=130)
    plt.close(fig)
