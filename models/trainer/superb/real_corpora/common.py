"""What every loader of :mod:`models.trainer.superb.real_corpora` shares: the ``OUT/<task>`` target
(filled through :func:`models.trainer.fileio.staged_folder`), list files, audio headers, and
one split's manifest and label files."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from ...data.corpora import _check_audio
from ...data.manifest import manifest_path, write_labels, write_manifest
from ...errors import DataError
from ...fileio import PathLike, check_output_folder


def _target(out: PathLike, task: str, overwrite: bool) -> Path:
    """``OUT/<task>``, refused if it exists and ``overwrite`` is not set."""
    out = check_output_folder(out)
    final = out / task
    if final.exists() and not overwrite:
        raise DataError(f"{final}: already exists; pass --force (overwrite=True in Python) "
                        f"to replace it")
    return final


def _required_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataError(f"{path}: missing ({what})")
    return path


def _lines(path: Path, what: str) -> list[tuple[int, str]]:
    """(line number, line without outer white space) of every non-blank line of a list file;
    ``what`` says what the missing file should hold."""
    text = _required_file(path, what).read_text(encoding="utf-8")
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1)
            if line.strip()]


def _fields(path: Path, what: str, separator: Optional[str] = None) -> list[tuple[int, list]]:
    return [(number, line.split(separator)) for number, line in _lines(path, what)]


def _measured(root: Path, relatives: Sequence[str], desc: str, progress: bool) -> list[int]:
    """Samples in each file (headers only): 16 kHz mono WAV, or a :class:`DataError`."""
    from tqdm import tqdm

    return [_check_audio(root / relative)
            for relative in tqdm(relatives, desc=desc, unit="file", disable=not progress)]


def _write_split(folder: Path, split: str, root: Path, relatives: Sequence[str],
                 samples: Sequence[int], labels: dict[str, Sequence[str]]) -> None:
    """``<split>.tsv`` rooted at ``root`` and one ``<split>.<suffix>`` per entry of ``labels``."""
    if not relatives:
        raise DataError(f"{root}: no utterances for the {split} split")
    write_manifest(manifest_path(folder, split), root, zip(relatives, samples))
    for suffix, lines in labels.items():
        write_labels(folder / f"{split}.{suffix}", list(lines))
