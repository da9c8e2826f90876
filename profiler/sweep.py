"""A design-space sweep: encoder family x layers x width x heads x bit pair (x the
Sparseformer's block size), each point profiled on meta tensors, held against cost budgets,
with the Pareto front of storage against estimated time.

A point is built from its family's first zoo preset (``models.encoders``) with the
point's shape as config overrides (the preset's FFN ratio and activation are kept); a W1A1
point is the preset's ``bq-`` twin (BiT, as Table 1's binarized rows), any other bit pair
the float preset at ``weight_bits``/``activation_bits``. Each point is profiled through
:func:`profiler.table.profile_zoo_model`, so it shares the profile cache with the table,
and points run in parallel processes. Grid combinations that cannot build are skipped and
counted by reason, never raised: a width the heads do not divide, a block size for a
family without sparse attention (that point is profiled once, without one), a config the
zoo rejects (its message).
"""
from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, List, Mapping, Optional, Sequence, Tuple

from models.constants import BINARIZED_PREFIX
from models.quantization import W1A1, Quantization

from .budgets import Budget, time_column
from .columns import KEYS
from .errors import UsageError

NOT_DIVISIBLE = "dim not divisible by heads"
NO_BLOCK = "block size for a family without sparse attention (point kept once, without)"
# What a sweep writes into its output folder.
CSV_FILE, JSON_FILE, FIGURE_FILE = "sweep.csv", "sweep.json", "pareto.png"
# (family, layers, dim, heads, ffn_dim, weight_bits, activation_bits, block_size)
PointKey = Tuple[str, int, int, int, int, int, int, Optional[int]]


def uses_block_size(family) -> bool:
    """Whether an encoder family has a sparse attention pattern with a block size."""
    return tuple(family.attentions) != ("dense",)


@dataclass(frozen=True)
class Point:
    family: str
    layers: int
    dim: int
    heads: int
    bits: Quantization
    block_size: Optional[int] = None

    @property
    def model(self) -> str:
        """The zoo model the point is built from."""
        from models.encoders import family

        preset = next(iter(family(self.family).presets))
        return BINARIZED_PREFIX + preset if self.bits == W1A1 else preset

    @property
    def overrides(self) -> dict:
        values = dict(layers=self.layers, dim=self.dim, heads=self.heads)
        if self.bits != W1A1:
            values.update(weight_bits=self.bits.weight_bits,
                          activation_bits=self.bits.activation_bits)
        if self.block_size is not None:
            values["sparse_block"] = self.block_size
        return values


@dataclass(frozen=True)
class Grid:
    families: Tuple[str, ...]
    layers: Tuple[int, ...]
    dims: Tuple[int, ...]
    heads: Tuple[int, ...]
    bits: Tuple[Quantization, ...]
    block_sizes: Optional[Tuple[int, ...]] = None   # None: each sparse family's default

    def points(self) -> Tuple[List[Point], Counter]:
        """The points that build, in grid order, and the skipped combinations by reason
        (points + skipped = the product of the axes)."""
        import models
        from models.encoders import family as family_entry

        points, skipped = [], Counter()
        blocks = self.block_sizes or (None,)
        for name in self.families:
            sparse = uses_block_size(family_entry(name))
            for layers, dim, heads, bits in itertools.product(self.layers, self.dims,
                                                              self.heads, self.bits):
                if dim % heads:
                    skipped[NOT_DIVISIBLE] += len(blocks)
                    continue
                if not sparse and self.block_sizes:
                    skipped[NO_BLOCK] += len(blocks) - 1
                for block in blocks if sparse else (None,):
                    point = Point(name, layers, dim, heads, bits, block)
                    try:
                        models.config(point.model, **point.overrides)
                    except ValueError as error:
                        skipped[str(error).partition(": ")[2] or str(error)] += 1
                        continue
                    points.append(point)
        return points, skipped


@dataclass(frozen=True)
class SweepSettings:
    seconds: float
    convention: str
    catalog: str                       # the catalog of est_time_s and the figure
    estimate: str
    time_catalogs: Tuple[str, ...] = ()  # other catalogs a time budget names


def check_families(names: Sequence[str]) -> Tuple[str, ...]:
    from models.encoders import FAMILIES

    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise UsageError(f"unknown encoder family {unknown[0]!r}; known: {', '.join(FAMILIES)}")
    return tuple(dict.fromkeys(names))


@lru_cache(maxsize=None)
def _catalog(reference: str):
    from .catalog import load_catalog

    return load_catalog(reference)


def profile_point(point: Point, settings: SweepSettings) -> dict:
    """One output row: the point's parameters, raw params and MACs, every cost column of
    :mod:`profiler.columns` on the sweep's catalog and the time on each other catalog."""
    from .conventions import get_convention
    from .table import profile_zoo_model, row_for, zoo_estimate

    convention = get_convention(settings.convention)
    item = profile_zoo_model(point.model, settings.seconds, convention, **point.overrides)
    row = row_for(item, convention, _catalog(settings.catalog), settings.estimate)
    columns = {key: row[key] for key in KEYS if key in row}
    for reference in settings.time_catalogs:
        columns[time_column(reference)] = zoo_estimate(item, convention, _catalog(reference),
                                                       settings.estimate)
    return {"family": point.family, "layers": point.layers, "dim": point.dim,
            "heads": point.heads, "ffn_dim": item.config.ffn_dim, "bits": point.bits.label,
            "block_size": point.block_size, **columns,
            "params": int(item.profile.totals["params"]),
            "macs": int(item.profile.totals["macs"])}


def _profile_chunk(job: Tuple[Sequence[Point], SweepSettings]) -> List[dict]:
    points, settings = job
    return [profile_point(point, settings) for point in points]


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)   # meta work: threads would only contend with the other workers


def profile_points(points: Sequence[Point], settings: SweepSettings, *, workers: int = 1,
                   progress: bool = False) -> List[dict]:
    """Rows of ``points`` in their order, profiled by ``workers`` processes (1: here)."""
    from .cache import source_fingerprint

    source_fingerprint()   # hashed once here; forked workers inherit it
    # A few chunks per worker: fewer round trips than one point each, balanced to the end.
    size = max(1, min(16, len(points) // (workers * 4) or 1))
    chunks = [list(points[i:i + size]) for i in range(0, len(points), size)]
    from concurrent.futures import ProcessPoolExecutor
    from contextlib import ExitStack

    from tqdm import tqdm

    jobs = [(chunk, settings) for chunk in chunks]
    rows: List[dict] = []
    with ExitStack() as stack:
        bar = stack.enter_context(tqdm(total=len(points), desc="sweep", unit="point",
                                       leave=False, disable=not progress))
        if workers > 1 and len(chunks) > 1:
            pool = stack.enter_context(ProcessPoolExecutor(max_workers=workers,
                                                           initializer=_one_thread))
            results = pool.map(_profile_chunk, jobs)
        else:
            results = map(_profile_chunk, jobs)
        for chunk_rows in results:   # in order, as each chunk is done
            rows += chunk_rows
            bar.update(len(chunk_rows))
    return rows


def judge(rows: List[dict], budgets: Sequence[Budget], catalog: str) -> List[dict]:
    """Adds ``meets_budgets`` (every budget met) and ``on_pareto_front`` to each row: the
    front of storage against estimated time on ``catalog``, over the rows that meet every
    budget (all rows when none does)."""
    for row in rows:
        row["meets_budgets"] = all(b.met(row, catalog) for b in budgets)
    feasible = [row for row in rows if row["meets_budgets"]]
    front = {id(row) for row in pareto_front(feasible)}
    for row in rows:
        row["on_pareto_front"] = id(row) in front
    return rows


def pareto_front(rows: Iterable[dict], x: str = "est_time_s", y: str = "storage_mb") -> List[dict]:
    """The rows no other row beats on both ``x`` and ``y`` (lower is better), by ``x``."""
    front, best = [], float("inf")
    for row in sorted(rows, key=lambda r: (r[x], r[y])):
        if row[y] < best:
            front.append(row)
            best = row[y]
    return front


def point_key(config) -> PointKey:
    """The key of a zoo config (or an output row) in a sweep, to join by."""
    get = (config.get if isinstance(config, Mapping) else
           lambda name: getattr(config, name, None))
    if isinstance(config, Mapping):
        bits = Quantization.parse(config["bits"])
        family, block = config["family"], config["block_size"]
    else:
        from models.encoders import family as family_entry

        bits = Quantization(config.weight_bits, config.activation_bits)
        family = config.encoder
        block = config.sparse_block if uses_block_size(family_entry(family)) else None
    return (family, get("layers"), get("dim"), get("heads"), get("ffn_dim"),
            bits.weight_bits, bits.activation_bits, block)


def join_accuracy(rows: List[dict], accuracy: Mapping[PointKey, Mapping[str, float]]
                  ) -> Tuple[List[dict], int]:
    """Adds each measured value of ``accuracy`` to the row of its point; returns the rows
    (every row gets every measured column, None where it has no value) and how many rows
    were joined."""
    columns = list(dict.fromkeys(c for values in accuracy.values() for c in values))
    joined = 0
    for row in rows:
        values = accuracy.get(point_key(row), {})
        joined += bool(values)
        for column in columns:
            row[column] = values.get(column)
    return rows, joined


def check_outputs(folder: Path) -> None:
    """A one-line :class:`UsageError`, before any profiling, unless ``folder`` can take the
    sweep's three files (a failure after the first is written would leave half a sweep)."""
    from .files import check_folder

    folder = check_folder(folder)
    for name in (CSV_FILE, JSON_FILE, FIGURE_FILE):
        if (folder / name).is_dir():
            raise UsageError(f"cannot write {folder / name}: it is a folder")


def write_outputs(rows: List[dict], folder: Path, record: dict, budgets: Sequence[Budget],
                  catalog_name: str) -> List[Path]:
    """``sweep.csv``, ``sweep.json`` (``record`` beside the rows) and ``pareto.png`` in
    ``folder``, each written atomically; returns their paths."""
    from .figures import storage_vs_time
    from .files import atomic_write, make_folder
    from .formats import to_csv

    folder = make_folder(folder)
    paths = [atomic_write(folder / CSV_FILE, to_csv(rows)),
             atomic_write(folder / JSON_FILE,
                          json.dumps({**record, "points": rows}, indent=1) + "\n")]
    limits: dict = {}      # the tightest budget of each quantity is the line drawn
    for b in budgets:
        if b.quantity in ("storage", "time") and b.catalog in (None, catalog_name):
            limits[b.quantity] = min(b.limit, limits.get(b.quantity, b.limit))
    storage_vs_time(rows, folder / FIGURE_FILE, catalog_name, limits)
    return paths + [folder / FIGURE_FILE]


def summary(rows: Sequence[dict], skipped: Counter, budgets: Sequence[Budget]) -> str:
    """What the sweep found, for the terminal: counts, skipped reasons, the front."""
    lines = [f"{len(rows)} points profiled, {sum(skipped.values())} combinations skipped"]
    lines += [f"  skipped {count}: {reason}" for reason, count in skipped.most_common()]
    met = sum(row["meets_budgets"] for row in rows)
    if budgets:
        lines.append(f"{met} meet every budget ({'; '.join(b.label for b in budgets)})")
    front = [row for row in rows if row["on_pareto_front"]]
    lines.append(f"Pareto front (storage against estimated time), {len(front)} points:")
    for row in sorted(front, key=lambda r: r["est_time_s"]):
        block = f" block {row['block_size']}" if row["block_size"] is not None else ""
        lines.append(f"  {row['family']} L{row['layers']} D{row['dim']} H{row['heads']} "
                     f"{row['bits']}{block}: {row['storage_mb']:.2f} MB, "
                     f"{row['est_time_s'] * 1e3:.4f} ms")
    return "\n".join(lines) + "\n"

