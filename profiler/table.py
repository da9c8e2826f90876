"""Rows of a Table-1 style report for zoo models: build, profile, scale, estimate."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from .catalog import Catalog
from .conventions import Convention
from .errors import UsageError
from .estimator import paper_time, roofline_time
from .result import Profile

SAMPLE_RATE = 16_000
COLUMNS = ("model", "layers", "dim", "heads", "precision", "storage_mb", "flop_g",
           "bop_nonq_g", "bop_bq_g", "est_time_s")


@dataclass
class ProfiledModel:
    name: str
    config: object
    profile: Profile


def profile_zoo_model(name: str, seconds: float, convention: Convention,
                      **overrides) -> ProfiledModel:
    """Build ``name`` on the meta device at the convention's float width and profile one
    utterance of ``seconds`` (batch 1) in eval mode."""
    import torch

    import models
    from .analyzer import profile

    try:
        config = models.config(name, **overrides)
    except ValueError as error:
        raise UsageError(str(error)) from error
    dtype = torch.float16 if convention.float_bits(config) == 16 else torch.float32
    model = models.build(name, device="meta", dtype=dtype, **overrides).eval()
    samples = int(round(seconds * SAMPLE_RATE))
    if model.frames(samples) < 1:
        raise UsageError(f"--seconds {seconds:g} is shorter than one encoder frame "
                         f"({model.downsample_rate / SAMPLE_RATE * 1000:.0f} ms hop, "
                         f"{400 / SAMPLE_RATE * 1000:.0f} ms window)")
    waveform = torch.empty(1, samples, device="meta", dtype=dtype)
    return ProfiledModel(name, model.config, profile(model, waveform))


def row_for(item: ProfiledModel, convention: Convention, catalog: Catalog,
            estimate: str) -> dict:
    c = item.config
    columns = convention.columns(item.profile.totals)
    if estimate == "paper":
        seconds = paper_time(columns["bop_nonq_g"], columns["bop_bq_g"], catalog)
    elif estimate == "roofline":
        seconds = roofline_time(item.profile, catalog)
    else:
        raise UsageError(f"unknown estimate {estimate!r}; known: paper, roofline")
    precision = c.precision
    if convention.float_bits(c) == 16:
        precision = precision.replace("FP32", "FP16")
    return {"model": item.name, "layers": c.layers, "dim": c.dim, "heads": c.heads,
            "precision": precision, **columns, "est_time_s": seconds}


def resolve_models(spec: Optional[Sequence[str]]) -> list[str]:
    import models

    known = models.names()
    if not spec or spec == ["all"]:
        return known
    chosen = []
    for item in spec:
        for name in item.split(","):
            name = name.strip()
            if not name:
                continue
            if name == "all":
                chosen.extend(known)
            elif name not in known:
                raise UsageError(f"unknown model {name!r}; known models: {', '.join(known)}")
            else:
                chosen.append(name)
    return list(dict.fromkeys(chosen))


def build_rows(names: Iterable[str], *, seconds: float, convention: Convention,
               catalog: Catalog, estimate: str, progress: bool = False) -> list[dict]:
    names = list(names)
    iterator = names
    if progress:
        from tqdm import tqdm

        iterator = tqdm(names, desc="profiling", unit="model", leave=False)
    return [row_for(profile_zoo_model(n, seconds, convention), convention, catalog, estimate)
            for n in iterator]
