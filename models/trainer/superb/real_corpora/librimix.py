"""SD from Libri2Mix (``data librimix``).

Libri2Mix in s3prl's kaldi-style data folders (``train``, ``dev`` -> valid, ``test``;
``wav.scp`` and ``rttm`` in each, as LibriMix's ``prepare_diarization.py`` writes them).
"""
from __future__ import annotations

import os
from pathlib import Path

from ...data.corpora import existing_folder
from ...errors import DataError
from ...fileio import PathLike, staged_folder
from .common import _fields, _lines, _measured, _required_file, _target, _write_split

LIBRIMIX_FOLDERS = {"train": "train", "dev": "valid", "test": "test"}


def _kaldi_recordings(data_dir: Path) -> dict[str, Path]:
    """recording id -> audio file of a ``wav.scp`` (relative paths: from the current folder,
    as Kaldi reads them)."""
    recordings = {}
    path = data_dir / "wav.scp"
    for number, line in _lines(path, "a kaldi-style data folder lists its audio in wav.scp"):
        parts = line.split(None, 1)
        if len(parts) != 2 or parts[1].endswith("|"):
            raise DataError(f"{path}:{number}: expected 'RECORDING PATH' (no piped commands), "
                            f"got {line!r}")
        recordings[parts[0]] = Path(parts[1]).absolute()
    return recordings


def prepare_librimix(root: PathLike, out: PathLike, *, overwrite: bool = False,
                     progress: bool = True) -> Path:
    """``OUT/sd`` from s3prl's diarization data folder (``train``, ``dev``, ``test``)."""
    from ..tasks.sd import read_rttm

    root = existing_folder(root, "LibriMix diarization data").resolve()
    final = _target(out, "sd", overwrite)
    splits = {}
    for name, split in LIBRIMIX_FOLDERS.items():
        data_dir = existing_folder(root / name, "kaldi-style data")
        recordings = _kaldi_recordings(data_dir)
        rttm = _required_file(data_dir / "rttm", "the reference segments of the recordings")
        segments = read_rttm(rttm)
        unknown = sorted(set(segments) - set(recordings))
        if unknown:
            raise DataError(f"{rttm}: recording {unknown[0]} is not in wav.scp")
        stems = {recording: path.stem for recording, path in recordings.items()}
        if len(set(stems.values())) != len(stems):
            raise DataError(f"{data_dir / 'wav.scp'}: two recordings share a file name")
        base = Path(os.path.commonpath([p.parent for p in recordings.values()]))
        ordered = sorted(recordings, key=lambda r: stems[r])
        relatives = [recordings[r].relative_to(base).as_posix() for r in ordered]
        # The task finds a recording's segments by its file name.
        lines = [" ".join([fields[0], stems[fields[1]], *fields[2:]])
                 for _, fields in _fields(rttm, "") if fields[0] == "SPEAKER"]
        splits[split] = (base, relatives, lines)
    with staged_folder(final) as folder:
        for split, (base, relatives, lines) in splits.items():
            samples = _measured(base, relatives, f"librimix {split}", progress)
            _write_split(folder, split, base, relatives, samples, {"rttm": lines})
    return final
