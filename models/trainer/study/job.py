"""One job of a study: what it is, where its output goes and what it waits for.

:mod:`.plan` makes them, :mod:`.order` shards and orders them, :mod:`.runner` runs them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple


@dataclass(frozen=True)
class Job:
    key: str                                   # unique, e.g. "train/conformer-s/seed-0/bq"
    kind: str                                  # data | train | superb | propagation
    path: Path                                 # run/evaluation folder or output file
    chain: Optional[Tuple[str, int]]           # (model, seed); None for the corpus
    needs: Tuple[str, ...] = ()
    variant: Optional[str] = None
    task: Optional[str] = None
    options: Dict[str, Any] = field(default_factory=dict, compare=False)
