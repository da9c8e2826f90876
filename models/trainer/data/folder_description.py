"""What a corpus folder holds, for a corpus that ``data synth`` did not write (a real
corpus given with ``--data``, its task folders from the ``data`` importers).

A synthesized corpus describes itself in ``corpus.json`` (sizes, seed, espeak-ng's
version). Any other folder is described here by its contents: per task folder, each
manifest's utterances, hours and a digest of its entries (relative path and length, so a
corpus moved as a whole keeps its description), and a digest of the task's other files
beside the manifests (labels, dictionaries, RTTM) without audio. Two studies compare these
descriptions to tell whether an earlier study's evaluations were made on the same corpus
(``study --restore-from``, ``--anchors-from``)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Dict

from ...constants import SAMPLE_RATE
from ..errors import DataError
from ..fileio import PathLike
from .manifest import read_manifest

FOLDER_FORMAT = "encoder-profiler-folder/1"
MANIFEST_SUFFIX = ".tsv"
AUDIO_SUFFIXES = (".wav", ".flac")
DIGEST_CHARACTERS = 16           # of a SHA-256: enough to tell two corpora apart


def describe_folder(folder: PathLike) -> Dict[str, Any]:
    """The description of corpus folder ``folder``: ``format``, ``sample_rate`` and, per
    subfolder holding manifests, ``splits`` (per manifest: ``utterances``, ``hours``,
    ``digest``) and ``files`` (a digest of its other non-audio files)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such corpus folder")
    tasks = {}
    for task in sorted(path for path in folder.iterdir() if path.is_dir()):
        manifests = sorted(task.glob(f"*{MANIFEST_SUFFIX}"))
        if manifests:
            tasks[task.name] = {"splits": {path.stem: _describe_manifest(path)
                                           for path in manifests},
                                "files": _files_digest(task)}
    if not tasks:
        raise DataError(f"{folder}: no task folder with manifests ({MANIFEST_SUFFIX}) in it")
    return {"format": FOLDER_FORMAT, "sample_rate": SAMPLE_RATE, "tasks": tasks}


def _describe_manifest(path: Path) -> Dict[str, Any]:
    manifest = read_manifest(path)
    digest = hashlib.sha256()
    for relative, samples in zip(manifest.files, manifest.num_samples):
        digest.update(f"{relative}\t{samples}\n".encode("utf-8"))
    return {"utterances": len(manifest),
            "hours": round(sum(manifest.num_samples) / SAMPLE_RATE / 3600, 4),
            "digest": digest.hexdigest()[:DIGEST_CHARACTERS]}


def _files_digest(task: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(task.iterdir()):
        if path.is_file() and path.suffix not in (MANIFEST_SUFFIX, *AUDIO_SUFFIXES):
            digest.update(f"{path.name}\n".encode("utf-8"))
            digest.update(path.read_bytes())
    return digest.hexdigest()[:DIGEST_CHARACTERS]
