"""Which shard of a study runs a job, and in what order a shard runs its jobs.

Shards: all jobs of one (model, seed) chain go to one shard, chain k (in sorted order) to
shard k mod N + 1, so a job's dependencies are in its own shard; the only exception is
the synthesized corpus, made by shard 1 and waited for by the others (with --data there
is none). Order: seed by seed, the anchors no verdict reads last (:func:`seed_major`);
``--gate-only`` keeps the teacher gate's jobs (:func:`gate_jobs`). Jobs are
:class:`.job.Job`s.
"""
from __future__ import annotations

import re
from typing import List, Sequence, Tuple

from ..errors import DataError
from .job import Job
from .presets import ITERATION_1_VARIANT, RANDOM_VARIANTS
from .settings import FP_VARIANT


def parse_shard(text: str) -> Tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise DataError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. 2/4")
    return int(match.group(1)), int(match.group(2))


def shard_of(job: Job, jobs: Sequence[Job], shards: int) -> int:
    """The shard (1-based) that runs ``job``: chains in sorted (model, seed) order, dealt
    out round-robin; the corpus belongs to shard 1."""
    if job.chain is None:
        return 1
    chains = sorted({j.chain for j in jobs if j.chain is not None})
    return chains.index(job.chain) % shards + 1


def shard_jobs(jobs: Sequence[Job], shard: str) -> List[Job]:
    index, count = parse_shard(shard)
    return [job for job in jobs if shard_of(job, jobs, count) == index]


# The variants whose heads the teacher gate compares: the fp teacher and its random-init twin.
GATE_VARIANTS = (FP_VARIANT, ITERATION_1_VARIANT, "random")


def gate_jobs(jobs: Sequence[Job]) -> List[Job]:
    """The jobs the teacher gate needs (``--gate-only``): the corpus, the fp teachers and
    the heads on them and on the random-init fp upstreams."""
    return [job for job in jobs if job.kind == "data"
            or (job.kind in ("train", "superb") and job.variant in GATE_VARIANTS)]


# Table 2's anchors that no verdict reads (the gate reads ``random``'s heads).
LATE_VARIANTS = tuple(name for name in RANDOM_VARIANTS if name not in GATE_VARIANTS)


def seed_major(jobs: Sequence[Job], models: Sequence[str]) -> List[Job]:
    """``jobs`` seed by seed (every model's seed 0, then seed 1...), dependencies first:
    a study stopped half-way has whole seeds of every model, which its report can use.
    The :data:`LATE_VARIANTS` anchors of every seed come last, so the verdict's jobs of
    all seeds finish first (they depend on nothing but the corpus)."""
    def order(job: Job):
        if job.chain is None:
            return (False, -1, -1)
        model, seed = job.chain
        return (job.variant in LATE_VARIANTS, seed, models.index(model))
    return sorted(jobs, key=order)     # stable: a chain's own order is kept
