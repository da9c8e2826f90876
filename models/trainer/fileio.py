"""Atomic file and folder writing: a file or folder appears complete under its name, or
not at all."""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Iterator

# One implementation of atomic writes serves the whole project.
from profiler.files import PathLike, check_folder, make_folder
from profiler.files import atomic_open as atomic_write

from .errors import DataError


def check_output_folder(path: PathLike) -> Path:
    """``path`` as a Path once it is known that it is, or can be made, a folder: a file in
    its place or above it is a one-line :class:`DataError`, found before any work."""
    return check_folder(path, error=DataError)


def make_output_folder(path: PathLike) -> Path:
    """Make folder ``path`` (and those above it); a failure is a one-line :class:`DataError`."""
    return make_folder(path, error=DataError)


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8, '\\n' line ends)."""
    with atomic_write(path, "w") as handle:
        handle.write(text)


def write_bytes_atomic(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)


@contextlib.contextmanager
def staged_folder(final: PathLike) -> Iterator[Path]:
    """A fresh, empty ``<final>.partial`` to fill; when the block ends it becomes ``final``.

    If the block raises, the staging folder is removed and ``final`` is left as it was. An
    existing ``final`` is first renamed ``<final>.old``, so that at every moment either the
    old folder or the new one is in place (never neither), then removed."""
    final = Path(final)
    staging = final.with_name(f"{final.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    make_output_folder(staging)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if final.exists():
        old = final.with_name(f"{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        staging.rename(final)
        shutil.rmtree(old)
    else:
        staging.rename(final)


