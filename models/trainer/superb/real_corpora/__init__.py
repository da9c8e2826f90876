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
:mod:`.quesst14` (QbE), :mod:`.iemocap` (ER); :mod:`.common` holds what they share.

These loaders live in :mod:`models.trainer.superb`, not in :mod:`models.trainer.data`:
they write each task's label files in the formats its task module defines (IC's slots,
SD's RTTM reader, SF's slot tags, the counted dictionary of :mod:`..tasks.common`), so
they come after the tasks rather than holding a second copy of those formats.
"""
from __future__ import annotations

from .fluent_speech_commands import prepare_fluent_speech_commands
from .iemocap import prepare_iemocap
from .librimix import prepare_librimix
from .librispeech import prepare_librispeech_tasks
from .quesst14 import prepare_quesst14
from .snips import prepare_snips
from .speech_commands import prepare_speech_commands_v1
from .voxceleb1 import prepare_voxceleb1

__all__ = [
    "prepare_fluent_speech_commands", "prepare_iemocap", "prepare_librimix",
    "prepare_librispeech_tasks", "prepare_quesst14", "prepare_snips",
    "prepare_speech_commands_v1", "prepare_voxceleb1",
]
