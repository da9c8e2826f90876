"""SID and ASV from VoxCeleb1 (``data voxceleb1``).

Splits as s3prl's recipes run SUPERB:

- **SID**: ``iden_split.txt`` (1 train, 2 valid, 3 test), 1 251 speakers.
- **ASV**: test = the trial list (``veri_test2.txt`` by default, the cleaned
  VoxCeleb1-O list; ``veri_test.txt`` is the original); train = every utterance of 2 s or
  more (s3prl's ``min_sec``) of the other speakers. VoxCeleb1 has no validation list (s3prl
  scores checkpoints on test): valid here holds out ``valid_speakers`` of the training
  speakers, drawn with ``seed``, with ``valid_trials`` trials among their utterances.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ....constants import SAMPLE_RATE
from ...data.corpora import existing_folder
from ...data.manifest import SPEAKER_LABELS, dictionary_path, write_dictionary
from ...data.synth_plan import SPLITS
from ...errors import DataError, check_seed
from ...fileio import PathLike, staged_folder
from .common import _fields, _measured, _target, _write_split
from .importers import ASV_MIN_VALID_TRIALS, ASV_VALID_SPEAKERS, ASV_VALID_TRIALS, corpus_tasks

VOXCELEB_SPLITS = {"1": "train", "2": "valid", "3": "test"}     # iden_split.txt's numbers
ASV_MIN_TRAIN_SAMPLES = 2 * SAMPLE_RATE
VOXCELEB_TASKS = corpus_tasks("voxceleb1")


def _voxceleb_wav_folders(root: Path) -> list[Path]:
    folders = [p for p in (root / "wav", *sorted(root.glob("*/wav"))) if p.is_dir()]
    if not folders:
        raise DataError(f"{root}: no wav folder (VoxCeleb1 unpacked as dev/wav and test/wav, "
                        f"or as wav, each holding id1xxxx speaker folders)")
    return folders


def _voxceleb_file(root: Path, folders: list[Path], relative: str, where: str) -> str:
    """``relative`` (``id1xxxx/VIDEO/NNNNN.wav``) as a path under ``root``."""
    for folder in folders:
        if (folder / relative).is_file():
            return (folder / relative).relative_to(root).as_posix()
    raise DataError(f"{where}: {relative} is in none of the wav folders "
                    f"({', '.join(str(f) for f in folders)})")


def _speaker(relative: str) -> str:
    return Path(relative).parts[-3]


def prepare_voxceleb1(root: PathLike, out: PathLike, *, tasks: Sequence[str] = VOXCELEB_TASKS,
                      iden_split: Optional[PathLike] = None, trials: Optional[PathLike] = None,
                      valid_speakers: int = ASV_VALID_SPEAKERS,
                      valid_trials: int = ASV_VALID_TRIALS, seed: int = 0,
                      overwrite: bool = False, progress: bool = True) -> dict[str, Path]:
    """``OUT/sid`` and/or ``OUT/asv`` from VoxCeleb1. ``iden_split`` defaults to
    ``ROOT/iden_split.txt``, ``trials`` to ``ROOT/veri_test2.txt``."""
    root = existing_folder(root, "VoxCeleb1").resolve()
    unknown = [t for t in tasks if t not in VOXCELEB_TASKS]
    if unknown or not tasks:
        raise DataError(f"VoxCeleb1 serves the tasks {' and '.join(VOXCELEB_TASKS)}, not "
                        f"{list(unknown)}")
    check_seed(seed)
    if "asv" in tasks and valid_trials < ASV_MIN_VALID_TRIALS:
        raise DataError(f"valid_trials must be at least {ASV_MIN_VALID_TRIALS}, got "
                        f"{valid_trials}")
    targets = {task: _target(out, task, overwrite) for task in tasks}
    folders = _voxceleb_wav_folders(root)
    written = {}
    if "sid" in tasks:
        written["sid"] = _voxceleb_identification(
            root, folders, Path(iden_split) if iden_split else root / "iden_split.txt",
            targets["sid"], progress)
    if "asv" in tasks:
        written["asv"] = _voxceleb_verification(
            root, folders, Path(trials) if trials else root / "veri_test2.txt", targets["asv"],
            valid_speakers, valid_trials, seed, progress)
    return written


def _voxceleb_identification(root: Path, folders: list[Path], split_list: Path, final: Path,
                             progress: bool) -> Path:
    splits: dict[str, list[str]] = {split: [] for split in SPLITS}
    for number, fields in _fields(split_list, "VoxCeleb1's identification split: lines "
                                              "'SPLIT id1xxxx/VIDEO/NNNNN.wav', SPLIT 1-3"):
        if len(fields) != 2 or fields[0] not in VOXCELEB_SPLITS:
            raise DataError(f"{split_list}:{number}: expected 'SPLIT PATH' with SPLIT 1, 2 or "
                            f"3, got {' '.join(fields)!r}")
        splits[VOXCELEB_SPLITS[fields[0]]].append(
            _voxceleb_file(root, folders, fields[1], f"{split_list}:{number}"))
    speakers = sorted({_speaker(r) for files in splits.values() for r in files})
    with staged_folder(final) as folder:
        for split, files in splits.items():
            samples = _measured(root, files, f"voxceleb1 sid {split}", progress)
            _write_split(folder, split, root, files, samples,
                         {"sid": [_speaker(r) for r in files]})
        write_dictionary(dictionary_path(folder, "sid"), speakers)
    return final


def _voxceleb_verification(root: Path, folders: list[Path], trial_list: Path, final: Path,
                           valid_speakers: int, valid_trials: int, seed: int,
                           progress: bool) -> Path:
    rows = []
    for number, fields in _fields(trial_list, "VoxCeleb1 trials: lines 'LABEL PATH1 PATH2'"):
        if len(fields) != 3 or fields[0] not in ("0", "1"):
            raise DataError(f"{trial_list}:{number}: expected 'LABEL PATH1 PATH2' with LABEL "
                            f"0 or 1, got {' '.join(fields)!r}")
        rows.append((number, fields))
    located = {}
    for number, fields in rows:
        for relative in fields[1:]:
            if relative not in located:
                located[relative] = _voxceleb_file(root, folders, relative,
                                                   f"{trial_list}:{number}")
    test_speakers = {_speaker(r) for r in located.values()}
    pool = sorted(wav.relative_to(root).as_posix() for folder in folders
                  for speaker in folder.iterdir()
                  if speaker.is_dir() and speaker.name not in test_speakers
                  for wav in speaker.glob("*/*.wav"))
    speakers = sorted({_speaker(r) for r in pool})
    if not 0 < valid_speakers < len(speakers):
        raise DataError(f"{root}: {len(speakers)} speakers outside the trials; valid_speakers "
                        f"must be between 1 and {len(speakers) - 1}, got {valid_speakers}")
    rng = np.random.default_rng(seed)
    held_out = {speakers[i] for i in rng.choice(len(speakers), valid_speakers, replace=False)}
    samples = dict(zip(pool, _measured(root, pool, "voxceleb1 asv train/valid", progress)))
    train = [r for r in pool if _speaker(r) not in held_out
             and samples[r] >= ASV_MIN_TRAIN_SAMPLES]
    valid = [r for r in pool if _speaker(r) in held_out]
    test = sorted(located.values())
    valid_labels = [_speaker(r) for r in valid]
    with staged_folder(final) as folder:
        _write_split(folder, "train", root, train, [samples[r] for r in train],
                     {SPEAKER_LABELS: [_speaker(r) for r in train]})
        _write_split(folder, "valid", root, valid, [samples[r] for r in valid],
                     {SPEAKER_LABELS: valid_labels,
                      "trials": [f"{label} {valid[i]} {valid[j]}" for label, i, j in
                                 sample_trials(valid_labels, valid_trials, rng)]})
        _write_split(folder, "test", root, test, _measured(root, test, "voxceleb1 asv test",
                                                           progress),
                     {SPEAKER_LABELS: [_speaker(r) for r in test],
                      "trials": [f"{fields[0]} {located[fields[1]]} {located[fields[2]]}"
                                 for _, fields in rows]})
        write_dictionary(dictionary_path(folder, SPEAKER_LABELS),
                         sorted({_speaker(r) for r in train}))
    return final


def sample_trials(speakers: Sequence[str], wanted: int,
                  rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """About ``wanted`` distinct trials (label, i, j), i < j, half of them target (same
    speaker), drawn at random: unlike :func:`models.trainer.superb.tasks.asv.make_trials` it never
    lists all pairs, so it scales to thousands of utterances. Fewer when fewer exist."""
    by_speaker = defaultdict(list)
    for index, speaker in enumerate(speakers):
        by_speaker[speaker].append(index)
    several = [items for items in by_speaker.values() if len(items) >= 2]
    if not several or len(by_speaker) < 2:
        raise DataError("valid trials need two speakers and one with two utterances")
    chosen: dict[tuple[int, int], int] = {}
    for label, count in ((1, wanted // 2), (0, wanted - wanted // 2)):
        found, attempts = 0, 0
        while found < count and attempts < 20 * max(count, 1):
            attempts += 1
            if label:
                items = several[int(rng.integers(len(several)))]
                i, j = rng.choice(items, 2, replace=False)
            else:
                i, j = rng.integers(len(speakers), size=2)
                if speakers[i] == speakers[j]:
                    continue
            pair = (int(min(i, j)), int(max(i, j)))
            if pair not in chosen:
                chosen[pair] = label
                found += 1
    return sorted((label, i, j) for (i, j), label in chosen.items())
