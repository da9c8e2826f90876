"""Figures of the reports (matplotlib, drawn from plain data so the data can be checked)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

COMPONENT_ORDER = ("front end", "input projection", "positional conv", "attention",
                   "feed-forward", "convolution module", "time reduction", "norms & scales",
                   "other")


def component_of(module: str) -> str:
    """Which part of a HuBERT model a module (qualified name) belongs to."""
    parts = module.split(".")
    top = parts[0]
    if top == "feature_extractor":
        return "front end"
    if top in ("feature_norm", "feature_projection"):
        return "input projection"
    if top == "positional_conv":
        return "positional conv"
    if top == "encoder" and len(parts) >= 2 and parts[1] in ("time_reduction", "time_recovery"):
        return "time reduction"
    if top == "encoder" and len(parts) >= 4 and parts[1] == "layers":
        part = parts[3]
        if part.startswith("attention") and not part.endswith(("_norm", "_scale")):
            return "attention"
        if part.startswith(("ffn", "feed_forward")) and not part.endswith(("_norm", "_scale")):
            return "feed-forward"
        if part == "conv":
            return "convolution module"
        if part.endswith(("norm", "_scale")):
            return "norms & scales"
    if top == "encoder_norm":
        return "norms & scales"
    return "other"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "font.size": 9, "svg.hashsalt": "fixed"})
    return plt


def save_png(fig, path: Path, **savefig_options) -> None:
    """``fig`` as a PNG at ``path``, written atomically; without matplotlib's version in
    its metadata, so a committed figure rebuilds byte for byte under another release."""
    import io

    from .files import atomic_write

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None}, **savefig_options)
    atomic_write(path, buffer.getvalue())


def _spread(values: Sequence[float], factor: float) -> list[float]:
    """Positions for labels of points at ``values`` (ascending) on a log axis: each at
    least ``factor`` times the one below, the group kept centred on the points."""
    logs = [math.log(v) for v in values]
    gap = math.log(factor)
    placed = []
    for value in logs:
        placed.append(max(value, placed[-1] + gap) if placed else value)
    shift = (sum(logs) - sum(placed)) / len(placed) if placed else 0.0
    return [math.exp(v + shift) for v in placed]


def storage_vs_bops(points: Sequence[Mapping], path: Path) -> None:
    """points: model, storage_mb, bops_g, wer (paper), binarized."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 4.6))
    ax.set_xscale("log")
    ax.set_yscale("log")
    for binarized, marker, label in ((False, "o", "full precision"), (True, "s", "BiT W1A1")):
        chosen = sorted((p for p in points if p["binarized"] == binarized),
                        key=lambda q: q["bops_g"])
        if not chosen:
            continue
        ax.scatter([p["storage_mb"] for p in chosen], [p["bops_g"] for p in chosen],
                   marker=marker, label=label, s=36, zorder=3)
        # Labels stacked at least a line apart; the binarized points crowd together, so
        # theirs go in a column to the right of the group, each joined to its point.
        heights = _spread([p["bops_g"] for p in chosen], factor=1.16)
        column = max(p["storage_mb"] for p in chosen) * 1.5
        for p, height in zip(chosen, heights):
            text = f"{p['model']} (WER {p['wer']:.2f})" if p.get("wer") is not None else p["model"]
            where = (column if binarized else p["storage_mb"] * 1.12, height)
            ax.annotate(text, (p["storage_mb"], p["bops_g"]), xytext=where, fontsize=7,
                        va="center", textcoords="data",
                        arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.5"}
                        if binarized else None)
    storage = [p["storage_mb"] for p in points]
    bops = [p["bops_g"] for p in points]
    ax.set_xlim(min(storage) / 1.4, max(storage) * 4)
    ax.set_ylim(min(bops) / 1.35, max(bops) * 1.6)
    # Round-number ticks, no minor labels: on a log axis those collide.
    for axis, low, high in ((ax.xaxis, *ax.get_xlim()), (ax.yaxis, *ax.get_ylim())):
        ticks = [t for t in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if low <= t <= high]
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_locator(NullLocator())
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("storage (MB)")
    ax.set_ylabel("BOP_NonQ + BOP_BQ (G, paper convention)")
    ax.set_title("Storage against bit operations, 10 s input (labels: the paper's ASR WER)")
    ax.legend(loc="upper left")
    ax.grid(True, which="major", alpha=0.3)
    save_png(fig, path, bbox_inches="tight")
    plt.close(fig)


def module_breakdown(shares: Mapping[str, Mapping[str, float]], path: Path) -> None:
    """shares: model -> component -> bit operations (MACs x bits x bits)."""
    plt = _pyplot()
    models = list(shares)
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    left = [0.0] * len(models)
    colors = plt.get_cmap("tab10")
    for index, component in enumerate(COMPONENT_ORDER):
        values = []
        for model in models:
            total = sum(shares[model].values()) or 1
            values.append(100 * shares[model].get(component, 0) / total)
        if not any(values):
            continue
        ax.barh(models, values, left=left, label=component, color=colors(index))
        left = [a + b for a, b in zip(left, values)]
    ax.invert_yaxis()
    ax.set_xlabel("share of bit operations, MACs x bits x bits (%), 10 s input")
    ax.set_title("Where the bit operations are, by component")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=5)
    save_png(fig, path, bbox_inches="tight")
    plt.close(fig)


def cost_vs_length(series: Mapping[str, Mapping[str, Sequence[float]]], path: Path) -> None:
    """series: model -> {seconds, gflop, attention_share, effective_gflop}."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 3.8))
    for model, data in series.items():
        line, = left.plot(data["seconds"], data["gflop"], marker=".", label=model)
        if data.get("effective_gflop") and data["effective_gflop"] != data["gflop"]:
            left.plot(data["seconds"], data["effective_gflop"], linestyle="--",
                      color=line.get_color(), label=f"{model} (pattern's cost)")
        right.plot(data["seconds"], [100 * s for s in data["attention_share"]], marker=".",
                   color=line.get_color(), label=model)
    left.set_xlabel("input length (s)")
    left.set_ylabel("GFLOP")
    left.set_title("FLOPs against input length")
    left.grid(True, alpha=0.3)
    left.legend(fontsize=7)
    right.set_xlabel("input length (s)")
    right.set_ylabel("Q.K^T and A.V share of MACs (%)")
    right.set_title("Where attention's quadratic term takes over")
    right.axhline(50, color="grey", linewidth=0.8, linestyle=":")
    right.grid(True, alpha=0.3)
    save_png(fig, path, bbox_inches="tight")
    plt.close(fig)


def storage_vs_time(rows: Sequence[Mapping], path: Path, catalog: str,
                    limits: Mapping[str, float]) -> None:
    """A sweep's points: estimated time (x) against storage (y), log-log; points that meet
    every budget in colour by family (the others grey), the Pareto front as a step line,
    and the storage and time budgets (``limits``: MB, s) as dashed lines.
    rows: family, storage_mb, est_time_s, meets_budgets, on_pareto_front."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 4.6))
    ax.set_xscale("log")
    ax.set_yscale("log")
    usable = [r for r in rows if r["storage_mb"] > 0 and r["est_time_s"] > 0]
    other = [r for r in usable if not r["meets_budgets"]]
    if other:
        ax.scatter([r["est_time_s"] * 1e3 for r in other], [r["storage_mb"] for r in other],
                   s=10, color="0.75", label="over a budget", zorder=2)
    for family in dict.fromkeys(r["family"] for r in usable):
        chosen = [r for r in usable if r["meets_budgets"] and r["family"] == family]
        if chosen:
            ax.scatter([r["est_time_s"] * 1e3 for r in chosen],
                       [r["storage_mb"] for r in chosen], s=14, label=family, zorder=3)
    front = sorted((r for r in usable if r["on_pareto_front"]), key=lambda r: r["est_time_s"])
    if front:
        ax.step([r["est_time_s"] * 1e3 for r in front], [r["storage_mb"] for r in front],
                where="post", color="black", lw=1, label="Pareto front", zorder=4)
    if "storage" in limits:
        ax.axhline(limits["storage"], ls="--", lw=0.8, color="tab:red")
    if "time" in limits:
        ax.axvline(limits["time"] * 1e3, ls="--", lw=0.8, color="tab:red")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(plt.FuncFormatter(lambda v, _: ""))
    ax.set_xlabel(f"estimated time on {catalog} (ms)")
    ax.set_ylabel("storage (MB)")
    ax.set_title(f"Design-space sweep: {len(rows)} points, storage against estimated time")
    if usable:
        ax.legend(loc="best", fontsize=7)
    ax.grid(True, which="major", alpha=0.3)
    save_png(fig, path, bbox_inches="tight")
    plt.close(fig)
