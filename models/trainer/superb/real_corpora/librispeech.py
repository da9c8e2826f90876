"""ASR and PR from LibriSpeech (``data librispeech-tasks``).

Splits as s3prl's recipes run SUPERB: train = ``train-clean-100``, valid = ``dev-clean``,
test = ``test-clean``. ASR's targets are the transcripts' characters. PR's phonemes come
from a lexicon the user passes (s3prl's recipe reads two g2p'd LibriSpeech lexicons,
``librispeech-lexicon-200k-g2p.txt`` and ``librispeech-lexicon-allothers-g2p.txt``):
words are looked up upper case, a word listed more than once keeps its first
pronunciation, phonemes are kept as written (s3prl's are stressed ARPAbet), and a word
missing from the lexicon is refused (s3prl's G2P asserts that every word is listed).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, Union

from ...data.corpora import LibriSpeechUtterance, existing_folder, read_librispeech_subset
from ...data.manifest import (
    LETTER_LABELS,
    PHONEME_LABELS,
    WORD_LABELS,
    dictionary_path,
    letters_line,
)
from ...errors import DataError
from ...fileio import PathLike, staged_folder
from .common import _fields, _target, _write_split
from .importers import corpus_tasks

LIBRISPEECH_SPLITS = {"train": "train-clean-100", "valid": "dev-clean", "test": "test-clean"}
LIBRISPEECH_TASKS = corpus_tasks("librispeech-tasks")
MISSING_WORDS_SHOWN = 5      # out-of-lexicon words named in the error


def read_lexicon(paths: Sequence[PathLike]) -> dict[str, list[str]]:
    """word (upper case) -> phonemes of lexicon files with lines ``WORD PH1 PH2 ...`` (tab or
    spaces), read in order; a word listed more than once keeps its first pronunciation."""
    if not paths:
        raise DataError("no lexicon file given")
    pronunciations: dict[str, list[str]] = {}
    for path in map(Path, paths):
        for number, fields in _fields(path, "a lexicon: lines 'WORD PHONEME PHONEME ...'"):
            if len(fields) < 2:
                raise DataError(f"{path}:{number}: expected 'WORD PHONEME PHONEME ...', got "
                                f"{' '.join(fields)!r}")
            pronunciations.setdefault(fields[0].upper(), fields[1:])
    return pronunciations


def phonemize(splits: dict[str, list[LibriSpeechUtterance]],
              pronunciations: dict[str, list[str]], lexicon: str) -> dict[str, list[str]]:
    """split -> one phoneme line per utterance; every word must be in the lexicon."""
    missing: dict[str, str] = {}     # word -> the first utterance that has it
    for utterances in splits.values():
        for entry in utterances:
            for word in entry.text.split():
                if word not in pronunciations:
                    missing.setdefault(word, entry.utterance)
    if missing:
        shown = ", ".join(f"{word} ({utterance})" for word, utterance in
                          list(missing.items())[:MISSING_WORDS_SHOWN])
        raise DataError(f"{lexicon}: {len(missing)} words of the transcripts are not in the "
                        f"lexicon, e.g. {shown}; add them (s3prl's PR recipe refuses such words "
                        f"too; its g2p'd lexicons cover every LibriSpeech word)")
    return {split: [" ".join(p for word in entry.text.split() for p in pronunciations[word])
                    for entry in utterances]
            for split, utterances in splits.items()}


def prepare_librispeech_tasks(root: PathLike, out: PathLike, *,
                              tasks: Sequence[str] = LIBRISPEECH_TASKS,
                              lexicon: Union[PathLike, Sequence[PathLike], None] = None,
                              overwrite: bool = False, progress: bool = True) -> dict[str, Path]:
    """``OUT/asr`` and/or ``OUT/pr`` from the ``LibriSpeech`` folder (``train-clean-100``,
    ``dev-clean``, ``test-clean``); ``pr`` needs ``lexicon`` (a file or a list of them)."""
    from ...data.manifest import write_counted_dictionary

    if isinstance(lexicon, (str, os.PathLike)):
        lexicon = [lexicon]
    root = existing_folder(root, "LibriSpeech").resolve()
    unknown = [t for t in tasks if t not in LIBRISPEECH_TASKS]
    if unknown or not tasks:
        raise DataError(f"LibriSpeech serves the tasks {' and '.join(LIBRISPEECH_TASKS)}, not "
                        f"{list(unknown)}")
    if "pr" in tasks and not lexicon:
        raise DataError("the pr task needs a lexicon (--lexicon FILE: lines 'WORD PHONEME "
                        "PHONEME ...', e.g. s3prl's g2p'd LibriSpeech lexicons)")
    targets = {task: _target(out, task, overwrite) for task in tasks}
    pronunciations = read_lexicon(lexicon) if "pr" in tasks else {}
    folders = {split: existing_folder(root / name, f"LibriSpeech {name} (SUPERB's {split} "
                                                    f"split; --root holds "
                                                    f"{', '.join(LIBRISPEECH_SPLITS.values())})")
               for split, name in LIBRISPEECH_SPLITS.items()}
    splits = {split: read_librispeech_subset(folder, progress=progress)
              for split, folder in folders.items()}
    labels = {split: {WORD_LABELS: [entry.text for entry in utterances]}
              for split, utterances in splits.items()}
    if "pr" in tasks:
        lexicon_name = ", ".join(str(path) for path in lexicon)
        for split, lines in phonemize(splits, pronunciations, lexicon_name).items():
            labels[split][PHONEME_LABELS] = lines
    for split in splits:
        labels[split][LETTER_LABELS] = [letters_line(text) for text in labels[split][WORD_LABELS]]
    written = {}
    for task, symbols in (("asr", LETTER_LABELS), ("pr", PHONEME_LABELS)):
        if task not in tasks:
            continue
        with staged_folder(targets[task]) as folder:
            for split, utterances in splits.items():
                _write_split(folder, split, root, [entry.relative for entry in utterances],
                             [entry.samples for entry in utterances],
                             {WORD_LABELS: labels[split][WORD_LABELS],
                              symbols: labels[split][symbols]})
            write_counted_dictionary(dictionary_path(folder, symbols),
                                     [line.split() for split in splits
                                      for line in labels[split][symbols]])
        written[task] = targets[task]
    return written
