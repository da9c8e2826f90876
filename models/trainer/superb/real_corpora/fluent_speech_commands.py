"""IC from Fluent Speech Commands (``data fluentcommands``).

Splits as s3prl's recipe runs SUPERB: ``data/{train,valid,test}_data.csv``; an intent is
(action, object, location), spaces in values becoming ``_``.
"""
from __future__ import annotations

import csv
from pathlib import Path

from ...data.corpora import existing_folder
from ...data.manifest import WORD_LABELS, dictionary_path, write_dictionary
from ...data.synth_plan import SPLITS
from ...errors import DataError
from ...fileio import PathLike, staged_folder
from .common import _measured, _required_file, _target, _write_split


def prepare_fluent_speech_commands(root: PathLike, out: PathLike, *, overwrite: bool = False,
                                   progress: bool = True) -> Path:
    """``OUT/ic`` from ``fluent_speech_commands_dataset``."""
    from ..tasks.ic import SLOTS

    root = existing_folder(root, "Fluent Speech Commands").resolve()
    final = _target(out, "ic", overwrite)
    columns = ("path",) + SLOTS   # and "transcription", copied to .wrd where present
    splits = {}
    for split in SPLITS:
        path = _required_file(root / "data" / f"{split}_data.csv",
                              f"Fluent Speech Commands lists each split in data/{split}_data.csv")
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in columns if c not in (reader.fieldnames or ())]
            if missing:
                raise DataError(f"{path}: no column {missing[0]!r} (expected {', '.join(columns)})")
            rows = list(reader)
        intents = []
        for number, row in enumerate(rows, start=2):
            values = [row[slot].strip().replace(" ", "_") for slot in SLOTS]
            if not all(values):
                raise DataError(f"{path}:{number}: an empty {'/'.join(SLOTS)} value")
            intents.append(values)
        splits[split] = ([row["path"].strip() for row in rows], intents,
                         [" ".join((row.get("transcription") or "").split()) for row in rows])
    with staged_folder(final) as folder:
        for split, (files, intents, texts) in splits.items():
            samples = _measured(root, files, f"fluent speech commands {split}", progress)
            labels = {"ic": [" ".join(values) for values in intents]}
            if all(texts):
                labels[WORD_LABELS] = texts
            _write_split(folder, split, root, files, samples, labels)
        for position, slot in enumerate(SLOTS):
            write_dictionary(dictionary_path(folder, slot),
                             sorted({values[position] for _, intents, _ in splits.values()
                                     for values in intents}))
    return final
