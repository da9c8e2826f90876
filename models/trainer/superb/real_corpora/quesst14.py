"""QbE from QUESST 2014 (``data quesst14``).

The non-native English queries and documents (s3prl keeps ``nnenglish`` from
``scoring/language_key_*.lst``); dev queries for valid, eval queries for test, one
document set for both; hits from the LEXEME lines of the ground-truth RTTMs. QUESST ships
8 kHz audio: resample it to 16 kHz first, keeping the layout.
"""
from __future__ import annotations

from pathlib import Path

from ...data.corpora import existing_folder
from ...errors import DataError
from ...fileio import PathLike, staged_folder
from .common import _fields, _measured, _target, _write_split

QUESST_LANGUAGE = "nnenglish"
QUESST_GROUPS = {"valid": "dev", "test": "eval"}


def _quesst_english(root: Path, name: str) -> list[str]:
    """The ``nnenglish`` files of ``scoring/<name>`` as paths under ``root``."""
    path = root / "scoring" / name
    files = []
    for number, fields in _fields(path, "QUESST14's language key: lines 'PATH LANGUAGE'"):
        if len(fields) != 2 or "/" not in fields[0]:
            raise DataError(f"{path}:{number}: expected 'FOLDER/.../FILE.wav LANGUAGE', got "
                            f"{' '.join(fields)!r}")
        if fields[1] == QUESST_LANGUAGE:
            # s3prl drops the path's first folder (the database's own name) and joins the rest
            # to the root.
            relative = fields[0].split("/", 1)[1]
            if not (root / relative).is_file():
                raise DataError(f"{path}:{number}: {root / relative} does not exist")
            files.append(relative)
    if not files:
        raise DataError(f"{path}: lists no {QUESST_LANGUAGE} files")
    return files


def _quesst_hits(path: Path) -> set[tuple[str, str]]:
    """(document id, query id) of the LEXEME lines of a QUESST ground-truth RTTM."""
    hits = set()
    for number, fields in _fields(path, "QUESST14's ground truth"):
        if fields[0] != "LEXEME":
            continue
        if len(fields) < 6:
            raise DataError(f"{path}:{number}: expected 'LEXEME DOCUMENT CHANNEL START "
                            f"DURATION QUERY ...'")
        if fields[5] != "NO_KEYWORD":
            hits.add((fields[1], fields[5]))
    return hits


def prepare_quesst14(root: PathLike, out: PathLike, *, overwrite: bool = False,
                     progress: bool = True) -> Path:
    """``OUT/qbe`` from ``quesst14Database`` (its audio resampled to 16 kHz)."""
    root = existing_folder(root, "QUESST14").resolve()
    final = _target(out, "qbe", overwrite)
    documents = _quesst_english(root, "language_key_utterances.lst")
    document_ids = [Path(d).stem for d in documents]
    groups = {}
    for group, name in QUESST_GROUPS.items():
        queries = _quesst_english(root, f"language_key_{name}.lst")
        hits = _quesst_hits(root / "scoring" / f"groundtruth_quesst14_{name}" /
                            f"quesst14_{name}.rttm")
        groups[group] = (queries, [" ".join(str(k) for k, document in enumerate(document_ids)
                                            if (document, Path(query).stem) in hits)
                                   for query in queries])
    with staged_folder(final) as folder:
        document_samples = _measured(root, documents, "quesst14 documents", progress)
        for group, (queries, hit_lines) in groups.items():
            _write_split(folder, f"queries_{group}", root, queries,
                         _measured(root, queries, f"quesst14 {group} queries", progress),
                         {"hits": hit_lines})
            _write_split(folder, f"docs_{group}", root, documents, document_samples, {})
    return final
