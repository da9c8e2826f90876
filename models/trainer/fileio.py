"""Atomic file and folder writing: a file or folder appears complete under its name, or
not at all."""
from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Type

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


# ------------------------------------------------------------------------------- JSON
def write_json(path: PathLike, data: Any, *, sort_keys: bool = True,
               indent: Optional[int] = 2) -> None:
    """Write ``data`` to ``path`` atomically as JSON with a final newline; a value JSON
    cannot hold (a Path) is written as its ``str``. ``sort_keys=False`` keeps the order a
    record was built in, where that order is what a reader sees first."""
    write_text_atomic(path, json.dumps(data, indent=indent, sort_keys=sort_keys,
                                       default=str) + "\n")


def read_json(path: PathLike, what: str = "file",
              error: Type[DataError] = DataError) -> Dict[str, Any]:
    """A JSON object from ``path``; anything else is one ``error`` line naming ``what``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise error(f"{path}: a folder, not a {what}") from None
    except OSError as reason:
        raise error(f"{path}: cannot read the {what} ({reason.strerror or reason})") from None
    except (ValueError, UnicodeDecodeError) as reason:
        raise error(f"{path}: corrupt {what} (not valid JSON: {reason})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: corrupt {what} (expected a JSON object)")
    return data


# ------------------------------------------------------------- logs: one JSON object a line
def _log_line(entry: Dict[str, Any]) -> str:
    return json.dumps(entry, sort_keys=True) + "\n"


def append_log(path: PathLike, entry: Dict[str, Any]) -> None:
    """Add one JSON line to a log (flushed, so a kill loses at most that line)."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(_log_line(entry))
        handle.flush()


def write_log(path: PathLike, entries: Iterable[Dict[str, Any]]) -> None:
    """Write a whole log atomically, in :func:`append_log`'s format."""
    write_text_atomic(path, "".join(_log_line(entry) for entry in entries))


def read_log(path: PathLike) -> List[Dict[str, Any]]:
    """The entries of a log (none if it does not exist); a line cut by a kill ends it."""
    entries: List[Dict[str, Any]] = []
    path = Path(path)
    if not path.exists():
        return entries
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:
            break  # a line cut by a kill: everything after it is void
    return entries


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


