"""Atomic file writing: a file appears complete under its name, or not at all."""
from __future__ import annotations

# One implementation of atomic writes serves the whole project.
from profiler.files import PathLike
from profiler.files import atomic_open as atomic_write


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8, '\\n' line ends)."""
    with atomic_write(path, "w") as handle:
        handle.write(text)


def write_bytes_atomic(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)


