"""Rows of a Table-1 style report for zoo models: build, profile, scale, estimate."""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Iterable, Optional, Sequence

from models.constants import ENCODER_RECEPTIVE_FIELD, SAMPLE_RATE, samples_in
from models.quantization import Quantization

from .cache import cached
from .catalog import Catalog, load_catalog
from .conventions import GIGA, MB, Convention, get_convention, precision_label
from .errors import UsageError
from .estimator import describe_estimate, estimate_time
from .option_values import PAPER_CONVENTION, PAPER_ESTIMATE, split_list
from .reference import PAPER_CATALOG, PAPER_SECONDS
from .result import Profile


@dataclass
class ProfiledModel:
    name: str
    config: SimpleNamespace  # the zoo config's fields
    profile: Profile


def profile_zoo_model(name: str, seconds: float, convention: Convention, /, *,
                      use_cache: bool = True, mode: str = "inference",
                      **overrides) -> ProfiledModel:
    """Build ``name`` on the meta device at the convention's float width and profile one
    utterance of ``seconds`` (batch 1) in eval mode, or with ``mode="train"`` one training
    step in train mode. Results are cached on disk (see :mod:`profiler.cache`);
    ``use_cache=False`` always recounts."""
    import dataclasses

    import models

    try:
        config = models.config(name, **overrides)
    except ValueError as error:
        raise UsageError(str(error)) from error
    float_bits = convention.float_bits(name)
    samples = samples_in(seconds)
    request = {"model": name, "overrides": {k: repr(v) for k, v in sorted(overrides.items())},
               "samples": samples, "float_bits": float_bits}
    if mode != "inference":
        request["mode"] = mode

    def compute() -> dict:
        return {"config": {f.name: getattr(config, f.name) for f in dataclasses.fields(config)},
                "profile": _profile_meta(name, samples, float_bits, overrides, mode).to_dict()}

    entry = cached(request, compute) if use_cache else compute()
    return ProfiledModel(name, SimpleNamespace(**entry["config"]),
                         Profile.from_dict(entry["profile"]))


def build_meta(name: str, float_bits: int, **overrides):
    """Zoo model ``name`` on the meta device, its floats ``float_bits`` (16 or 32) wide."""
    import torch

    import models

    dtype = torch.float16 if float_bits == 16 else torch.float32
    return models.build(name, device="meta", dtype=dtype, **overrides)


def _profile_meta(name: str, samples: int, float_bits: int, overrides: dict,
                  mode: str = "inference") -> Profile:
    import torch

    from .analyzer import profile

    model = build_meta(name, float_bits, **overrides).train(mode == "train")
    if model.frames(samples) < 1:
        window_ms = ENCODER_RECEPTIVE_FIELD / SAMPLE_RATE * 1000
        raise UsageError(f"{samples / SAMPLE_RATE:g} s is shorter than one encoder frame "
                         f"(a {window_ms:.0f} ms window)")
    dtype = next(model.parameters()).dtype
    return profile(model, torch.empty(1, samples, device="meta", dtype=dtype), mode=mode)


def trace_zoo_kernels(name: str, seconds: float, float_bits: int = 32, **overrides) -> list:
    """The kernels (:class:`profiler.kernel_estimate.Kernel`) of one forward pass of zoo
    model ``name`` on an utterance of ``seconds``, traced on meta tensors."""
    import torch

    from .kernel_estimate import trace_kernels

    model = build_meta(name, float_bits, **overrides).eval()
    dtype = next(model.parameters()).dtype
    samples = samples_in(seconds)
    return trace_kernels(model, torch.empty(1, samples, device="meta", dtype=dtype))


def check_estimate(estimate: str, convention: str) -> None:
    """One :class:`UsageError` line for an estimate the convention cannot feed: the paper's
    time formula reads the paper convention's BOP columns (FLOPs x 16 over 2^30), and
    another convention's columns give it a time tens of times off."""
    if estimate == PAPER_ESTIMATE and convention != PAPER_CONVENTION:
        raise UsageError(f"--estimate {PAPER_ESTIMATE} is the paper's formula on the paper "
                         f"convention's BOP columns: give --convention {PAPER_CONVENTION}, or "
                         f"another estimate for --convention {convention}")


def zoo_estimate(item: ProfiledModel, convention: Convention, catalog: Catalog,
                 estimate: str) -> float:
    """Seconds by ``estimate`` for a profiled zoo model (the paper's formula reads the
    paper convention's BOP columns: :func:`check_estimate`)."""
    check_estimate(estimate, convention.name)
    return estimate_time(estimate, item.profile, catalog, convention.columns(item.profile.totals))


def row_for(item: ProfiledModel, convention: Convention, catalog: Catalog,
            estimate: str) -> dict:
    c = item.config
    columns = convention.columns(item.profile.totals)
    seconds = zoo_estimate(item, convention, catalog, estimate)
    quantization = Quantization(c.weight_bits, c.activation_bits, c.weight_scale)
    precision = precision_label(quantization, convention.float_bits(item.name))
    return {"model": item.name, "layers": c.layers, "dim": c.dim, "heads": c.heads,
            "precision": precision, **columns, "est_time_s": seconds}


def train_row_for(item: ProfiledModel, convention: Convention) -> dict:
    """A row of ``table --mode train`` (columns.TRAIN_COLUMNS) from a training step's
    profile: FLOPs in G = 1e9, memory in MB = 1e6; the forward columns are the
    convention's, as the inference table computes them."""
    t, memory = item.profile.totals, item.profile.memory["totals"]
    forward = convention.columns(t)
    c = item.config
    quantization = Quantization(c.weight_bits, c.activation_bits, c.weight_scale)
    return {"model": item.name, "layers": c.layers, "dim": c.dim, "heads": c.heads,
            "precision": precision_label(quantization, convention.float_bits(item.name)),
            "forward_flop_g": forward["flop_g"], "backward_flop_g": t["backward_flops"] / GIGA,
            "optimizer_flop_g": t["optimizer_flops"] / GIGA,
            "train_flop_g": t["train_flops"] / GIGA, "bop_bq_g": forward["bop_bq_g"],
            "gradient_state_mb": (memory["gradient_bytes"]
                                  + memory["optimizer_state_bytes"]) / MB,
            "peak_memory_mb": memory["peak_bytes"] / MB}


def caption(seconds: float, convention: str, estimate: str, catalog: Catalog) -> str:
    """The line under a Table-1 style table that says what it was computed with."""
    return (f"Input: {seconds:g} s at {SAMPLE_RATE // 1000} kHz, batch 1. Convention: "
            f"{convention}. " + describe_estimate(estimate, catalog))


def resolve_models(spec: Optional[Sequence[str]]) -> list[str]:
    import models

    known = models.names()
    if not spec or spec == ["all"]:
        return known
    chosen = []
    for item in spec:
        for name in split_list(item):
            if name == "all":
                chosen.extend(known)
            elif name not in known:
                raise UsageError(f"unknown model {name!r}; known models: {', '.join(known)}")
            else:
                chosen.append(name)
    return list(dict.fromkeys(chosen))


def paper_rows(names: Iterable[str], *, overrides: Optional[dict] = None,
               progress: bool = False) -> list[dict]:
    """Table 1's rows as the paper computes them: one 10 s utterance, the paper's counting
    convention, its runtime formula on its part (an A100)."""
    return build_rows(names, seconds=PAPER_SECONDS, convention=get_convention(PAPER_CONVENTION),
                      catalog=load_catalog(PAPER_CATALOG), estimate=PAPER_ESTIMATE,
                      overrides=overrides, progress=progress)


def paper_caption() -> str:
    """The line under a table of :func:`paper_rows`."""
    return caption(PAPER_SECONDS, PAPER_CONVENTION, PAPER_ESTIMATE, load_catalog(PAPER_CATALOG))


def build_rows(names: Iterable[str], *, seconds: float, convention: Convention,
               catalog: Catalog, estimate: str, progress: bool = False,
               overrides: Optional[dict] = None, mode: str = "inference") -> list[dict]:
    """One row per model; ``overrides`` (zoo config fields) apply to every model.
    ``mode="train"``: the rows of the training view (:func:`train_row_for`)."""
    names = list(names)
    overrides = overrides or {}
    iterator = names
    if progress:
        from tqdm import tqdm

        iterator = tqdm(names, desc="profiling", unit="model", leave=False)
    if mode == "train":
        return [train_row_for(profile_zoo_model(n, seconds, convention, mode=mode, **overrides),
                              convention) for n in iterator]
    return [row_for(profile_zoo_model(n, seconds, convention, **overrides), convention, catalog,
                    estimate)
            for n in iterator]
