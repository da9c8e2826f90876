"""The files a job's state reads, seen as if a committed copy were restored.

``study --dry-run --restore-from`` plans as if the committed runs were copied into the
study, without copying them: a dry run writes nothing. Within :func:`as_if_restored`,
:func:`study_file` answers each file the restore would write with its committed copy.
"""
from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path
from typing import Iterator, Mapping, Optional

# Each file the restore would write (absolute path in the study) -> its committed copy.
_RESTORED: contextvars.ContextVar[Mapping[Path, Path]] = contextvars.ContextVar(
    "restored", default={})


@contextlib.contextmanager
def as_if_restored(files: Mapping[Path, Path]) -> Iterator[None]:
    """Within it, job states read each of ``files``' keys from its value."""
    token = _RESTORED.set(dict(files))
    try:
        yield
    finally:
        _RESTORED.reset(token)


def study_file(path: Path) -> Optional[Path]:
    """The file a job's state reads at ``path``: ``path`` itself, else (within
    :func:`as_if_restored`) the committed copy a restore would write there; None when
    neither is a file."""
    if path.is_file():
        return path
    return _RESTORED.get().get(path)
