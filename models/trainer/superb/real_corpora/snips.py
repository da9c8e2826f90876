"""SF from Audio SNIPS (``data snips``).

Audio SNIPS as s3prl prepares it (``all.iob.snips.txt`` and ``{train,valid,test}/*.wav``
named ``<speaker>-snips-<split>-<n>``): train, valid and test keep SUPERB's speakers
(:data:`SNIPS_SPEAKERS`); punctuation tokens are dropped and ``&`` is read ``AND``, as
s3prl's character-slot encoder does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ...data.corpora import existing_folder
from ...data.manifest import (
    SLOT_LABELS,
    WORD_BOUNDARY,
    WORD_LABELS,
    dictionary_path,
    write_counted_dictionary,
)
from ...errors import DataError
from ...fileio import PathLike, staged_folder
from .common import _fields, _measured, _target, _write_split

SNIPS_SPEAKERS = {   # SUPERB's SF split of the Amazon Polly voices
    "train": ("Ivy", "Joanna", "Joey", "Justin", "Kendra", "Kimberly", "Matthew", "Salli"),
    "valid": ("Aditi", "Amy", "Geraint", "Nicole"),
    "test": ("Brian", "Emma", "Raveena", "Russell"),
}
SNIPS_SKIPPED_TOKENS = frozenset("?!.,;-")


def snips_symbols(words: Sequence[str], tags: Sequence[str]) -> list[str]:
    """The ``.slt`` symbols of a tagged SNIPS sentence (see :mod:`models.trainer.superb.tasks.sf`):
    letters, ``|`` between words, ``<slot>`` before a slot's words and ``</>`` after them.
    A tag is ``O``, a slot name (consecutive words with the same name form one slot, as in
    s3prl's preparation) or ``B-``/``I-`` plus a name (IOB)."""
    from ..tasks.sf import CLOSE_TAG

    symbols: list[str] = []
    current = None
    for word, tag in zip(words, tags):
        if word in SNIPS_SKIPPED_TOKENS or not word:
            continue
        word = "AND" if word == "&" else word
        if WORD_BOUNDARY in word or "<" in word or ">" in word:
            raise DataError(f"word {word!r} holds a symbol the slot format reserves")
        slot = None if tag == "O" else tag[2:] if tag[:2] in ("B-", "I-") else tag
        continues = slot is not None and slot == current and not tag.startswith("B-")
        if current is not None and not continues:
            symbols.append(CLOSE_TAG)
            current = None
        if symbols:
            symbols.append(WORD_BOUNDARY)
        if slot is not None and not continues:
            symbols.append(f"<{slot}>")
            current = slot
        symbols.extend(word)
    if current is not None:
        symbols.append(CLOSE_TAG)
    return symbols


def _snips_labels(path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """utterance id -> (words, tags) of ``all.iob.snips.txt``."""
    labels = {}
    for number, fields in _fields(path, "Audio SNIPS labels: lines 'ID BOS words EOS<TAB>O "
                                        "tags INTENT'", separator="\t"):
        words, tags = (fields + [""])[:2]
        words, tags = words.split(), tags.split()   # words start with the id
        if len(fields) != 2 or len(words) < 3 or len(words) != len(tags) + 1:
            raise DataError(f"{path}:{number}: expected 'ID BOS words EOS<TAB>O tags INTENT' "
                            f"with one tag per word")
        labels[words[0]] = (words[2:-1], tags[1:-1])
    return labels


def prepare_snips(root: PathLike, out: PathLike, *, overwrite: bool = False,
                  progress: bool = True) -> Path:
    """``OUT/sf`` from the ``SNIPS`` folder that s3prl's ``snips_prepare_data.sh`` makes."""

    root = existing_folder(root, "Audio SNIPS").resolve()
    final = _target(out, "sf", overwrite)
    labels = _snips_labels(root / "all.iob.snips.txt")
    splits = {}
    for split, speakers in SNIPS_SPEAKERS.items():
        folder = existing_folder(root / split, f"Audio SNIPS {split}")
        files = sorted((wav.relative_to(root).as_posix(), wav.stem)
                       for wav in folder.rglob("*.wav")
                       if wav.stem in labels and wav.stem.split("-")[0] in speakers)
        if not files:
            raise DataError(f"{folder}: no labelled .wav files of the speakers "
                            f"{', '.join(speakers)}")
        splits[split] = files
    lines = {split: [" ".join(snips_symbols(*labels[uid])) for _, uid in files]
             for split, files in splits.items()}
    with staged_folder(final) as folder:
        for split, files in splits.items():
            relatives = [relative for relative, _ in files]
            samples = _measured(root, relatives, f"snips {split}", progress)
            _write_split(folder, split, root, relatives, samples,
                         {SLOT_LABELS: lines[split],
                          WORD_LABELS: [" ".join(w for w in labels[uid][0]
                                           if w not in SNIPS_SKIPPED_TOKENS)
                                  for _, uid in files]})
        write_counted_dictionary(dictionary_path(folder, SLOT_LABELS),
                                 [line.split() for split_lines in lines.values()
                                  for line in split_lines])
    return final
