"""An on-disk cache of zoo-model profiles, keyed by the request and by the source code.

A key hashes the request (model, overrides, input length, dtype), the installed torch
version and the text of every Python file of the ``profiler`` and ``models`` packages, so
any change to a formula, a convention or a model misses the cache. Entries are JSON files
written atomically; a corrupt entry is ignored and recomputed.

Location: ``$PROFILE_ENCODER_CACHE``, else ``$XDG_CACHE_HOME/profile-encoder``, else
``~/.cache/profile-encoder``. ``PROFILE_ENCODER_CACHE=off`` disables it.
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional

from .files import PROJECT_ROOT

_PACKAGES = ("profiler", "models")


def cache_dir() -> Optional[Path]:
    setting = os.environ.get("PROFILE_ENCODER_CACHE")
    if setting is not None:
        return None if setting.lower() in ("", "0", "off", "no", "false") else Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "profile-encoder"


@lru_cache(maxsize=1)
def source_fingerprint() -> str:
    digest = hashlib.sha256()
    try:
        digest.update(metadata.version("torch").encode())
    except metadata.PackageNotFoundError:
        digest.update(b"torch?")
    root = PROJECT_ROOT
    for package in _PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def cached(request: dict, compute: Callable[[], dict]) -> dict:
    """``compute()``'s JSON-able result for ``request``, from the cache when present."""
    directory = cache_dir()
    if directory is None:
        return compute()
    key = hashlib.sha256(json.dumps({"request": request, "source": source_fingerprint()},
                                    sort_keys=True).encode()).hexdigest()
    path = directory / key[:2] / f"{key}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    value = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        from .files import atomic_write

        atomic_write(path, json.dumps(value))
    except Exception:  # a cache that cannot be written is only slower
        pass
    return value
