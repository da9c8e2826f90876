"""ER from IEMOCAP (``data iemocap``).

Classes neu, hap (with exc merged in), ang and sad; test = one session (``fold`` 1-5:
SUPERB reports the mean over the five); valid = 20 % of the other sessions' utterances,
drawn with ``seed`` (s3prl: a torch ``random_split`` seeded 0).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...data.corpora import existing_folder
from ...data.manifest import dictionary_path, write_dictionary
from ...errors import DataError, check_seed
from ...fileio import PathLike, staged_folder
from .common import _measured, _target, _write_split
from .importers import IEMOCAP_SESSIONS, IEMOCAP_TEST_SESSION

IEMOCAP_CLASSES = ("neu", "hap", "ang", "sad")
IEMOCAP_MERGED = {"exc": "hap"}
IEMOCAP_VALID_SHARE = 0.2


def _iemocap_emotions(session: Path) -> dict[str, str]:
    """utterance id -> emotion label of a session's ``dialog/EmoEvaluation/*.txt``."""
    folder = existing_folder(session / "dialog" / "EmoEvaluation", "IEMOCAP label")
    emotions = {}
    for path in sorted(folder.glob("*.txt")):
        if path.name.startswith("."):
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            fields = line.split("\t")
            if line.startswith("[") and len(fields) >= 3:
                emotions[fields[1].strip()] = fields[2].strip()
    return emotions


def prepare_iemocap(root: PathLike, out: PathLike, *, fold: int = IEMOCAP_TEST_SESSION,
                    seed: int = 0, overwrite: bool = False, progress: bool = True) -> Path:
    """``OUT/er`` from IEMOCAP, testing on session ``fold``."""
    root = existing_folder(root, "IEMOCAP").resolve()
    if fold not in range(1, IEMOCAP_SESSIONS + 1):
        raise DataError(f"fold must be a session number 1-{IEMOCAP_SESSIONS}, got {fold!r}")
    check_seed(seed)
    final = _target(out, "er", overwrite)
    kept: dict[bool, list[tuple[str, str]]] = {True: [], False: []}   # test session or not
    for number in range(1, IEMOCAP_SESSIONS + 1):
        session = existing_folder(root / f"Session{number}", "IEMOCAP session")
        emotions = _iemocap_emotions(session)
        wav_folder = existing_folder(session / "sentences" / "wav", "IEMOCAP sentences")
        for wav in sorted(wav_folder.glob("*/*.wav")):
            if wav.name.startswith("."):
                continue
            if wav.stem not in emotions:
                raise DataError(f"{wav}: no label in {session / 'dialog' / 'EmoEvaluation'}")
            emotion = IEMOCAP_MERGED.get(emotions[wav.stem], emotions[wav.stem])
            if emotion in IEMOCAP_CLASSES:
                kept[number == fold].append((wav.relative_to(root).as_posix(), emotion))
    rest = kept[False]
    order = np.random.default_rng(seed).permutation(len(rest))
    cut = int((1 - IEMOCAP_VALID_SHARE) * len(rest))
    splits = {"train": sorted(rest[i] for i in order[:cut]),
              "valid": sorted(rest[i] for i in order[cut:]), "test": kept[True]}
    with staged_folder(final) as folder:
        for split, items in splits.items():
            relatives = [relative for relative, _ in items]
            _write_split(folder, split, root, relatives,
                         _measured(root, relatives, f"iemocap {split}", progress),
                         {"er": [emotion for _, emotion in items]})
        write_dictionary(dictionary_path(folder, "er"), IEMOCAP_CLASSES)
    return final
