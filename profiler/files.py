"""Writing outputs so that a failure never leaves a half-written file behind."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator, Optional, Type, Union

from .errors import UsageError

PathLike = Union[str, os.PathLike]

# The project's folder: profiler/, models/, catalogs/ and reports/ side by side (the source
# tree, which an editable install runs from).
PROJECT_ROOT = Path(__file__).resolve().parents[1]
REPORTS = PROJECT_ROOT / "reports"

# os.umask can only be read by setting it; read it once, at import, and set it straight back.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success rename it onto ``path``.

    The temporary file lives in the same folder so that the final ``os.replace`` is an
    atomic rename on one file system; if the body raises, the temporary file is removed
    and an existing ``path`` is left untouched. Missing parent folders are created.
    """
    path = Path(path)
    make_folder(path.parent)
    binary = "b" in mode
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding,
                       newline=None if binary else "\n") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates files readable by the owner only; give them the usual umask mode.
        os.chmod(tmp_name, 0o666 & ~_UMASK)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def folder_problem(path: PathLike) -> Optional[str]:
    """Why folder ``path`` could not be made (or used), without making it: it is a file, a
    folder above it is a file, or the nearest folder above it that exists cannot be
    written; None when it can. For commands that work for minutes before they write."""
    path = Path(path)
    if path.exists():
        return None if path.is_dir() else f"{path} is a file, not a folder"
    above = next(parent for parent in path.parents if parent.exists() or parent == parent.parent)
    if not above.is_dir():
        return f"{above} is a file, not a folder"
    if not os.access(above, os.W_OK | os.X_OK):
        return f"folder {above} cannot be written"
    return None


def check_folder(path: PathLike, error: Type[Exception] = UsageError) -> Path:
    """``path`` as a Path once :func:`folder_problem` finds none; else ``error`` (one line)."""
    problem = folder_problem(path)
    if problem:
        raise error(f"cannot make folder {path}: {problem}")
    return Path(path)


def make_folder(path: PathLike, error: Type[Exception] = UsageError) -> Path:
    """Make folder ``path`` and the folders above it; one that cannot be made is ``error``
    (one line naming why), not an ``OSError`` from deep inside a command."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as failure:
        raise error(f"cannot make folder {path}: "
                    f"{folder_problem(path) or failure.strerror or failure}") from None
    return path


def check_writable(path: PathLike, probe: bool = True) -> Path:
    """``path`` as a Path, once it is known that it can be written: its folder exists and it
    is not a folder; ``probe`` also creates and removes a file in the folder (permissions, a
    read-only file system), for commands that work for minutes before they write. A
    problem is a :class:`UsageError` (one line, exit status 2 from the CLI)."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        why = (f"{directory} is not a folder" if directory.exists()
               else f"folder {directory} does not exist")
        raise UsageError(f"cannot write {path}: {why}")
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a folder")
    if probe:
        try:
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=directory)
        except OSError as error:
            raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
        os.close(fd)
        os.unlink(name)
    return path


def atomic_write(path: PathLike, data: Union[str, bytes]) -> Path:
    """Write ``data`` to ``path`` atomically. The folder must exist; a path that cannot be
    written is a :class:`UsageError` (one line, exit status 2 from the CLI)."""
    path = check_writable(path, probe=False)
    try:
        with atomic_open(path, "wb" if isinstance(data, bytes) else "w") as handle:
            handle.write(data)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from error
    return path
