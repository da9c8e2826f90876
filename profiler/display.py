"""Text rendering of profiles (kept apart from counting)."""
from __future__ import annotations

from typing import Mapping, Optional

from tabulate import tabulate

from .module_names import is_within
from .result import ROOT_LABEL, Profile
from .train_step import ADAMW_FLOPS_PER_PARAMETER

_UNITS = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def human(value: float, unit: str = "", precision: int = 2) -> str:
    """``1234567 -> '1.23 M'`` (decimal prefixes); below 1000, ``290 -> '290'`` and
    ``12.5 -> '12.5'`` (never exponent notation for a count)."""
    if value == 0:
        return f"0 {unit}".rstrip()
    for scale, prefix in _UNITS:
        if abs(value) >= scale:
            return f"{value / scale:.{precision}f} {prefix}{unit}"
    if float(value).is_integer():
        return f"{int(value)} {unit}".rstrip()
    if abs(value) >= 1:
        return f"{value:.{precision}f}".rstrip("0").rstrip(".") + f" {unit}".rstrip()
    return f"{value:.{precision}g} {unit}".rstrip()


def duration(seconds: float) -> str:
    """``0.000123 -> '123.0 us'``."""
    for scale, unit in ((1, "s"), (1e-3, "ms")):
        if seconds >= scale:
            return f"{seconds / scale:.2f} {unit}"
    return f"{seconds * 1e6:.1f} us"


def module_table(prof: Profile, depth: Optional[int] = 2, *, hide_empty: bool = True,
                 times: Optional[Mapping] = None) -> str:
    """Per-module table down to ``depth`` (deeper modules folded into their ancestor).
    ``times``: :class:`profiler.estimator.RowTime` by row name (from ``times_by_row`` at
    the same depth) adds the estimated time and whether compute or memory bounds it."""
    frame = prof.to_dataframe(depth=depth)
    total_flops = prof.totals["flops"] or 1
    rows = []
    for rec in frame.to_dict("records"):
        if hide_empty and rec["module"] and not any(
                rec[k] for k in ("params", "macs", "flops", "elementwise_flops", "bops")):
            continue
        indent = "  " * rec["depth"]
        name = rec["module"] or ROOT_LABEL
        rows.append([
            indent + name, rec["type"], human(rec["params"]),
            human(rec["storage_bytes"], "B"), human(rec["macs"]), human(rec["flops"]),
            f"{100 * rec['flops'] / total_flops:.1f}%", human(rec["bop_nonq"]),
            human(rec["bop_bq"]),
        ] + (_time_cells(times.get(rec["module"])) if times is not None else []))
    t = prof.totals
    rows.append(["total", "", human(t["params"]), human(t["storage_bytes"], "B"),
                 human(t["macs"]), human(t["flops"]), "100.0%", human(t["bop_nonq"]),
                 human(t["bop_bq"])]
                + ([duration(sum(r.seconds for r in times.values())), ""]
                   if times is not None else []))
    headers = ["module", "type", "params", "storage", "MACs", "FLOPs", "of FLOPs", "BOP_NonQ",
               "BOP_BQ"] + (["est. time", "bound"] if times is not None else [])
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def _time_cells(row_time) -> list[str]:
    if row_time is None:
        return ["-", "-"]
    return [duration(row_time.seconds), row_time.bound]


def summary(prof: Profile) -> str:
    t = prof.totals
    lines = [
        f"params {t['params']:,}   storage {t['storage_bytes'] / 1e6:,.3f} MB",
        f"MACs {t['macs']:,}   FLOPs {t['flops']:,} (matrix {t['mac_flops']:,} + "
        f"elementwise {t['elementwise_flops']:,})",
        f"BOPs {t['bops']:,}: full precision {t['bop_nonq']:,}, binarized {t['bop_bq']:,}"
        + (f", other quantized {t['bop_q']:,}" if t["bop_q"] else ""),
    ]
    if prof.by_bits:
        lines.append("by operand bits: " + ", ".join(
            f"{key} {v['macs']:,} MACs" for key, v in prof.by_bits.items()))
    if t["effective_macs"] != t["macs"]:
        lines.append(f"sparse attention: executed {t['macs']:,} MACs, the pattern needs "
                     f"{t['effective_macs']:,} (effective FLOPs {t['effective_flops']:,})")
    if t["foldable_flops"] or t["foldable_macs"]:
        lines.append(f"left out as precomputable (work on weights only): "
                     f"{t['foldable_macs']:,} MACs, {t['foldable_flops']:,} FLOPs")
    if prof.unsupported:
        lines.append("NOT COUNTED (no formula): " + ", ".join(
            f"{op} x{n}" for op, n in sorted(prof.unsupported.items())))
    return "\n".join(lines)


def training_table(prof: Profile, depth: Optional[int] = 2, *, hide_empty: bool = True) -> str:
    """Per-module cost of one training step (a ``mode="train"`` profile) down to ``depth``:
    forward, backward and optimizer FLOPs, and memory (saved bytes of the module's subtree;
    the largest live set while it ran, forward or backward)."""
    frame = prof.to_dataframe(depth=depth)
    memory = prof.memory.get("modules", {})
    rows = []
    for rec in frame.to_dict("records"):
        if hide_empty and rec["module"] and not (rec["train_flops"] or rec["train_bops"]):
            continue
        name = rec["module"]
        saved = sum(m.get("saved_bytes", 0) for n, m in memory.items()
                    if n == name or (rec["depth"] == depth and is_within(n, name)))
        peak = memory.get(name, {}).get("activation_peak_bytes", 0)
        rows.append(["  " * rec["depth"] + (name or ROOT_LABEL), rec["type"],
                     human(rec["trainable_params"]), human(rec["flops"]),
                     human(rec["backward_flops"]), human(rec["optimizer_flops"]),
                     human(rec["train_flops"]), human(rec["backward_bop_nonq"]),
                     human(saved, "B"), human(peak, "B")])
    t = prof.totals
    totals = prof.memory.get("totals", {})
    rows.append(["total", "", human(t["trainable_params"]), human(t["flops"]),
                 human(t["backward_flops"]), human(t["optimizer_flops"]),
                 human(t["train_flops"]), human(t["backward_bop_nonq"]),
                 human(totals.get("saved_activation_bytes", 0), "B"),
                 human(totals.get("activation_peak_bytes", 0), "B")])
    headers = ["module", "type", "trainable", "fwd FLOPs", "bwd FLOPs", "AdamW FLOPs",
               "step FLOPs", "bwd BOP_NonQ", "saved", "live peak"]
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def training_summary(prof: Profile) -> str:
    """The training step's totals and its peak memory (a ``mode="train"`` profile)."""
    t, m = prof.totals, prof.memory.get("totals", {})
    weights_only = 2 * t["foldable_macs"] + t["foldable_flops"]
    lines = [
        f"training step: {t['train_flops']:,} FLOPs = forward {t['flops']:,} + "
        + (f"work on the weights {weights_only:,} (every step: they change) + "
           if weights_only else "") + "backward "
        f"{t['backward_flops']:,} (matrix {t['backward_mac_flops']:,} + elementwise "
        f"{t['backward_elementwise_flops']:,}) + AdamW {t['optimizer_flops']:,} "
        f"({ADAMW_FLOPS_PER_PARAMETER} per trainable parameter)",
        f"backward MACs {t['backward_macs']:,}, all in float (binarized layers train through "
        f"straight-through estimators): " + ", ".join(
            f"{key} {v['macs']:,}" for key, v in prof.backward_by_bits.items()),
    ]
    if m:
        lines.append(
            f"peak memory {human(m['peak_bytes'], 'B')}: weights {human(m['weight_bytes'], 'B')}"
            f", gradients {human(m['gradient_bytes'], 'B')}, AdamW state "
            f"{human(m['optimizer_state_bytes'], 'B')}, live activations and gradients at "
            f"most {human(m['activation_peak_bytes'], 'B')} (saved for the backward "
            f"{human(m['saved_activation_bytes'], 'B')})")
    return "\n".join(lines)
