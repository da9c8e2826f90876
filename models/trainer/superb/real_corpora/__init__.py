"""Task folders for ``superb`` from the real corpora SUPERB evaluates on, for users who have them.

Each ``prepare_*`` reads a corpus in its standard on-disk layout and writes ``OUT/<task>``,
the folder ``profile-encoder superb --task <task> --data OUT`` reads: the manifests
(``train/valid/test.tsv``; QbE: queries and documents) and the task's label files, in the
formats of :mod:`..runner` (KS, SID) and :mod:`..tasks` (the others). Nothing is
downloaded and no audio is copied: manifests name the corpus's own files (their root is
the corpus folder; KS links to it as ``data speechcommands`` does). Audio must be 16 kHz
mono, 16-bit WAV (LibriSpeech: its FLAC files, which ``superb`` reads with the
``soundfile`` package); only headers are read. The folder is written as
``OUT/<task>.partial`` and renamed when complete; an existing one is replaced only with
``overwrite``.

Splits follow SUPERB as s3prl's recipes run it; each corpus's module says how:
:mod:`.librispeech` (ASR, PR), :mod:`.speech_commands` (KS), :mod:`.voxceleb1` (SID, ASV),
:mod:`.fluent_speech_commands` (IC), :mod:`.snips` (SF), :mod:`.librimix` (SD),
:mod:`.quesst14` (QbE), :mod:`.iemocap` (ER); :mod:`.common` holds what they share, and
:mod:`.importers` the table of them that the ``data`` commands are built from.

These loaders live in :mod:`models.trainer.superb`, not in :mod:`models.trainer.data`:
they write each task's label files in the formats its task module defines (IC's slots,
SD's RTTM reader, SF's slot tags, the counted dictionary of :mod:`..tasks.common`), so
they come after the tasks rather than holding a second copy of those formats.
"""
from __future__ import annotations

import importlib

from .importers import REAL_CORPORA, RealCorpus

# The module each loader lives in, imported on first use (the command line reads
# REAL_CORPORA to build its commands without importing any loader).
_EXPORTS = {
    "prepare_fluent_speech_commands": "fluent_speech_commands",
    "prepare_iemocap": "iemocap",
    "prepare_librimix": "librimix",
    "prepare_librispeech_tasks": "librispeech",
    "prepare_quesst14": "quesst14",
    "prepare_snips": "snips",
    "prepare_speech_commands_v1": "speech_commands",
    "prepare_voxceleb1": "voxceleb1",
}

__all__ = ["REAL_CORPORA", "RealCorpus", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
