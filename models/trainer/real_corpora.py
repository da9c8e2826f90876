"""Task folders for ``superb`` from the real corpora SUPERB evaluates on, for users who have them.

Each ``prepare_*`` reads a corpus in its standard on-disk layout and writes ``OUT/<task>``,
the folder ``profile-encoder superb --task <task> --data OUT`` reads: the manifests
(``train/valid/test.tsv``; QbE: queries and documents) and the task's label files, in the
formats of :mod:`models.trainer.superb` (KS, SID) and :mod:`models.trainer.tasks` (the
others). Nothing is downloaded and no audio is copied: manifests name the corpus's own files
(their root is the corpus folder; KS links to it as ``data speechcommands`` does). Audio
must be 16 kHz mono, 16-bit WAV (LibriSpeech: its FLAC files, which ``superb`` reads with
the ``soundfile`` package); only headers are read. The folder is written as
``OUT/<task>.partial`` and renamed when complete; an existing one is replaced only with
``overwrite``.

Splits follow SUPERB as s3prl's recipes run it:

- **ASR** and **PR**, LibriSpeech: train = ``train-clean-100``, valid = ``dev-clean``,
  test = ``test-clean``. ASR's targets are the transcripts' characters. PR's phonemes come
  from a lexicon the user passes (s3prl's recipe reads two g2p'd LibriSpeech lexicons,
  ``librispeech-lexicon-200k-g2p.txt`` and ``librispeech-lexicon-allothers-g2p.txt``):
  words are looked up upper case, a word listed more than once keeps its first
  pronunciation, phonemes are kept as written (s3prl's are stressed ARPAbet), and a word
  missing from the lexicon is refused (s3prl's G2P asserts that every word is listed).
- **KS**, Speech Commands v0.01: the ten keywords, ``_unknown_`` (every other word) and
  ``_silence_``; valid = ``validation_list.txt``; the clips of ``testing_list.txt`` are
  left out (s3prl's hash split discards them); test = the separate
  ``speech_commands_test_set_v0.01``. ``_silence_`` for train and valid: 1 s clips cut from
  ``_background_noise_`` (s3prl crops the noise files at random each time instead).
- **SID**, VoxCeleb1: ``iden_split.txt`` (1 train, 2 valid, 3 test), 1 251 speakers.
- **ASV**, VoxCeleb1: test = the trial list (``veri_test2.txt`` by default, the cleaned
  VoxCeleb1-O list; ``veri_test.txt`` is the original); train = every utterance of 2 s or
  more (s3prl's ``min_sec``) of the other speakers. VoxCeleb1 has no validation list (s3prl
  scores checkpoints on test): valid here holds out ``valid_speakers`` of the training
  speakers, drawn with ``seed``, with ``valid_trials`` trials among their utterances.
- **IC**, Fluent Speech Commands: ``data/{train,valid,test}_data.csv``; an intent is
  (action, object, location), spaces in values becoming ``_``.
- **SF**, Audio SNIPS as s3prl prepares it (``all.iob.snips.txt`` and
  ``{train,valid,test}/*.wav`` named ``<speaker>-snips-<split>-<n>``): train, valid and test
  keep SUPERB's speakers (:data:`SNIPS_SPEAKERS`); punctuation tokens are dropped and ``&``
  is read ``AND``, as s3prl's character-slot encoder does.
- **SD**, Libri2Mix in s3prl's kaldi-style data folders (``train``, ``dev`` -> valid,
  ``test``; ``wav.scp`` and ``rttm`` in each, as LibriMix's ``prepare_diarization.py``
  writes them).
- **QbE**, QUESST 2014: the non-native English queries and documents (s3prl keeps
  ``nnenglish`` from ``scoring/language_key_*.lst``); dev queries for valid, eval queries
  for test, one document set for both; hits from the LEXEME lines of the ground-truth RTTMs.
  QUESST ships 8 kHz audio: resample it to 16 kHz first, keeping the layout.
- **ER**, IEMOCAP: neu, hap (with exc merged in), ang and sad; test = one session
  (``fold`` 1-5: SUPERB reports the mean over the five); valid = 20 % of the other
  sessions' utterances, drawn with ``seed`` (s3prl: a torch ``random_split`` seeded 0).
"""
from __future__ import annotations

import contextlib
import csv
import os
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import numpy as np

from ..constants import SAMPLE_RATE
from .corpora import (
    LibriSpeechUtterance,
    _check_audio,
    _existing_folder,
    prepare_speech_commands,
    read_librispeech_subset,
)
from .errors import DataError
from .fileio import PathLike
from .manifest import (
    letters_line,
    read_manifest,
    write_dictionary,
    write_labels,
    write_manifest,
)
from .synth_plan import SPLITS

LIBRISPEECH_SPLITS = {"train": "train-clean-100", "valid": "dev-clean", "test": "test-clean"}
LIBRISPEECH_TASKS = ("asr", "pr")
MISSING_WORDS_SHOWN = 5      # out-of-lexicon words named in the error
VOXCELEB_SPLITS = {"1": "train", "2": "valid", "3": "test"}     # iden_split.txt's numbers
ASV_MIN_TRAIN_SAMPLES = 2 * SAMPLE_RATE
SNIPS_SPEAKERS = {   # SUPERB's SF split of the Amazon Polly voices
    "train": ("Ivy", "Joanna", "Joey", "Justin", "Kendra", "Kimberly", "Matthew", "Salli"),
    "valid": ("Aditi", "Amy", "Geraint", "Nicole"),
    "test": ("Brian", "Emma", "Raveena", "Russell"),
}
SNIPS_SKIPPED_TOKENS = frozenset("?!.,;-")
LIBRIMIX_FOLDERS = {"train": "train", "dev": "valid", "test": "test"}
QUESST_LANGUAGE = "nnenglish"
QUESST_GROUPS = {"valid": "dev", "test": "eval"}
IEMOCAP_SESSIONS = 5
IEMOCAP_CLASSES = ("neu", "hap", "ang", "sad")
IEMOCAP_MERGED = {"exc": "hap"}
IEMOCAP_VALID_SHARE = 0.2


# ------------------------------------------------------------------------------ shared
def _target(out: PathLike, task: str, overwrite: bool) -> Path:
    """``OUT/<task>``, refused if it exists and ``overwrite`` is not set."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    final = out / task
    if final.exists() and not overwrite:
        raise DataError(f"{final}: already exists; pass --force (overwrite=True in Python) "
                        f"to replace it")
    return final


@contextlib.contextmanager
def _staged(final: Path) -> Iterator[Path]:
    """A fresh ``<final>.partial`` to write into, renamed to ``final`` when the block ends."""
    staging = final.with_name(f"{final.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)


def _required_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataError(f"{path}: missing ({what})")
    return path


def _lines(path: Path, what: str) -> list[tuple[int, str]]:
    """(line number, line without outer white space) of every non-blank line of a list file;
    ``what`` says what the missing file should hold."""
    text = _required_file(path, what).read_text(encoding="utf-8")
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1)
            if line.strip()]


def _fields(path: Path, what: str, separator: Optional[str] = None) -> list[tuple[int, list]]:
    return [(number, line.split(separator)) for number, line in _lines(path, what)]


def _measured(root: Path, relatives: Sequence[str], desc: str, progress: bool) -> list[int]:
    """Samples in each file (headers only): 16 kHz mono WAV, or a :class:`DataError`."""
    from tqdm import tqdm

    return [_check_audio(root / relative)
            for relative in tqdm(relatives, desc=desc, unit="file", disable=not progress)]


def _write_split(folder: Path, split: str, root: Path, relatives: Sequence[str],
                 samples: Sequence[int], labels: dict[str, Sequence[str]]) -> None:
    """``<split>.tsv`` rooted at ``root`` and one ``<split>.<suffix>`` per entry of ``labels``."""
    if not relatives:
        raise DataError(f"{root}: no utterances for the {split} split")
    write_manifest(folder / f"{split}.tsv", root, zip(relatives, samples))
    for suffix, lines in labels.items():
        write_labels(folder / f"{split}.{suffix}", list(lines))


def _check_seed(seed: int) -> None:
    if not isinstance(seed, int) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")


# ------------------------------------------------------------ KS: Speech Commands v0.01
def prepare_speech_commands_v1(root: PathLike, test_root: PathLike, out: PathLike, *,
                               seed: int = 0, overwrite: bool = False,
                               progress: bool = True) -> Path:
    """``OUT/ks`` from ``speech_commands_v0.01`` and ``speech_commands_test_set_v0.01``."""
    _check_seed(seed)
    final = _target(out, "ks", overwrite)
    _existing_folder(test_root, "Speech Commands test set")
    with _staged(final) as folder:
        prepare_speech_commands(root, folder, test_root=test_root, seed=seed,
                                train_on_testing_list=False, progress=progress)
    for split in SPLITS:   # the manifests' root was the staging folder
        manifest = read_manifest(final / f"{split}.tsv")
        write_manifest(manifest.path, final, zip(manifest.files, manifest.num_samples))
    return final


# ------------------------------------------------------------- ASR and PR: LibriSpeech
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
    from .tasks.common import write_counted_dictionary

    if isinstance(lexicon, (str, os.PathLike)):
        lexicon = [lexicon]
    root = _existing_folder(root, "LibriSpeech").resolve()
    unknown = [t for t in tasks if t not in LIBRISPEECH_TASKS]
    if unknown or not tasks:
        raise DataError(f"LibriSpeech serves the tasks {' and '.join(LIBRISPEECH_TASKS)}, not "
                        f"{list(unknown)}")
    if "pr" in tasks and not lexicon:
        raise DataError("the pr task needs a lexicon (--lexicon FILE: lines 'WORD PHONEME "
                        "PHONEME ...', e.g. s3prl's g2p'd LibriSpeech lexicons)")
    targets = {task: _target(out, task, overwrite) for task in tasks}
    pronunciations = read_lexicon(lexicon) if "pr" in tasks else {}
    folders = {split: _existing_folder(root / name, f"LibriSpeech {name} (SUPERB's {split} "
                                                    f"split; --root holds "
                                                    f"{', '.join(LIBRISPEECH_SPLITS.values())})")
               for split, name in LIBRISPEECH_SPLITS.items()}
    splits = {split: read_librispeech_subset(folder, progress=progress)
              for split, folder in folders.items()}
    labels = {split: {"wrd": [entry.text for entry in utterances]}
              for split, utterances in splits.items()}
    if "pr" in tasks:
        lexicon_name = ", ".join(str(path) for path in lexicon)
        for split, lines in phonemize(splits, pronunciations, lexicon_name).items():
            labels[split]["phn"] = lines
    for split in splits:
        labels[split]["ltr"] = [letters_line(text) for text in labels[split]["wrd"]]
    written = {}
    for task, symbols in (("asr", "ltr"), ("pr", "phn")):
        if task not in tasks:
            continue
        with _staged(targets[task]) as folder:
            for split, utterances in splits.items():
                _write_split(folder, split, root, [entry.relative for entry in utterances],
                             [entry.samples for entry in utterances],
                             {"wrd": labels[split]["wrd"], symbols: labels[split][symbols]})
            write_counted_dictionary(folder / f"dict.{symbols}.txt",
                                     [line for split in splits for line in labels[split][symbols]])
        written[task] = targets[task]
    return written


# ----------------------------------------------------------------------- VoxCeleb1
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


def prepare_voxceleb1(root: PathLike, out: PathLike, *, tasks: Sequence[str] = ("sid", "asv"),
                      iden_split: Optional[PathLike] = None, trials: Optional[PathLike] = None,
                      valid_speakers: int = 20, valid_trials: int = 2000, seed: int = 0,
                      overwrite: bool = False, progress: bool = True) -> dict[str, Path]:
    """``OUT/sid`` and/or ``OUT/asv`` from VoxCeleb1. ``iden_split`` defaults to
    ``ROOT/iden_split.txt``, ``trials`` to ``ROOT/veri_test2.txt``."""
    root = _existing_folder(root, "VoxCeleb1").resolve()
    unknown = [t for t in tasks if t not in ("sid", "asv")]
    if unknown or not tasks:
        raise DataError(f"VoxCeleb1 serves the tasks sid and asv, not {list(unknown)}")
    _check_seed(seed)
    if "asv" in tasks and valid_trials < 2:
        raise DataError(f"valid_trials must be at least 2, got {valid_trials}")
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
    with _staged(final) as folder:
        for split, files in splits.items():
            samples = _measured(root, files, f"voxceleb1 sid {split}", progress)
            _write_split(folder, split, root, files, samples,
                         {"sid": [_speaker(r) for r in files]})
        write_dictionary(folder / "dict.sid.txt", speakers)
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
    with _staged(final) as folder:
        _write_split(folder, "train", root, train, [samples[r] for r in train],
                     {"spk": [_speaker(r) for r in train]})
        _write_split(folder, "valid", root, valid, [samples[r] for r in valid],
                     {"spk": valid_labels,
                      "trials": [f"{label} {valid[i]} {valid[j]}" for label, i, j in
                                 sample_trials(valid_labels, valid_trials, rng)]})
        _write_split(folder, "test", root, test, _measured(root, test, "voxceleb1 asv test",
                                                           progress),
                     {"spk": [_speaker(r) for r in test],
                      "trials": [f"{fields[0]} {located[fields[1]]} {located[fields[2]]}"
                                 for _, fields in rows]})
        write_dictionary(folder / "dict.spk.txt", sorted({_speaker(r) for r in train}))
    return final


def sample_trials(speakers: Sequence[str], wanted: int,
                  rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """About ``wanted`` distinct trials (label, i, j), i < j, half of them target (same
    speaker), drawn at random: unlike :func:`models.trainer.tasks.asv.make_trials` it never
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


# ---------------------------------------------------------- IC: Fluent Speech Commands
def prepare_fluent_speech_commands(root: PathLike, out: PathLike, *, overwrite: bool = False,
                                   progress: bool = True) -> Path:
    """``OUT/ic`` from ``fluent_speech_commands_dataset``."""
    from .tasks.ic import SLOTS

    root = _existing_folder(root, "Fluent Speech Commands").resolve()
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
    with _staged(final) as folder:
        for split, (files, intents, texts) in splits.items():
            samples = _measured(root, files, f"fluent speech commands {split}", progress)
            labels = {"ic": [" ".join(values) for values in intents]}
            if all(texts):
                labels["wrd"] = texts
            _write_split(folder, split, root, files, samples, labels)
        for position, slot in enumerate(SLOTS):
            write_dictionary(folder / f"dict.{slot}.txt",
                             sorted({values[position] for _, intents, _ in splits.values()
                                     for values in intents}))
    return final


# ------------------------------------------------------------------ SF: Audio SNIPS
def snips_symbols(words: Sequence[str], tags: Sequence[str]) -> list[str]:
    """The ``.slt`` symbols of a tagged SNIPS sentence (see :mod:`models.trainer.tasks.sf`):
    letters, ``|`` between words, ``<slot>`` before a slot's words and ``</>`` after them.
    A tag is ``O``, a slot name (consecutive words with the same name form one slot, as in
    s3prl's preparation) or ``B-``/``I-`` plus a name (IOB)."""
    from .tasks.sf import CLOSE_TAG, WORD_BOUNDARY

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
    from .tasks.common import write_counted_dictionary

    root = _existing_folder(root, "Audio SNIPS").resolve()
    final = _target(out, "sf", overwrite)
    labels = _snips_labels(root / "all.iob.snips.txt")
    splits = {}
    for split, speakers in SNIPS_SPEAKERS.items():
        folder = _existing_folder(root / split, f"Audio SNIPS {split}")
        files = sorted((wav.relative_to(root).as_posix(), wav.stem)
                       for wav in folder.rglob("*.wav")
                       if wav.stem in labels and wav.stem.split("-")[0] in speakers)
        if not files:
            raise DataError(f"{folder}: no labelled .wav files of the speakers "
                            f"{', '.join(speakers)}")
        splits[split] = files
    lines = {split: [" ".join(snips_symbols(*labels[uid])) for _, uid in files]
             for split, files in splits.items()}
    with _staged(final) as folder:
        for split, files in splits.items():
            relatives = [relative for relative, _ in files]
            samples = _measured(root, relatives, f"snips {split}", progress)
            _write_split(folder, split, root, relatives, samples,
                         {"slt": lines[split],
                          "wrd": [" ".join(w for w in labels[uid][0]
                                           if w not in SNIPS_SKIPPED_TOKENS)
                                  for _, uid in files]})
        write_counted_dictionary(folder / "dict.slt.txt",
                                 [line for split_lines in lines.values() for line in split_lines])
    return final


# ------------------------------------------------------------------- SD: Libri2Mix
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
    from .tasks.sd import read_rttm

    root = _existing_folder(root, "LibriMix diarization data").resolve()
    final = _target(out, "sd", overwrite)
    splits = {}
    for name, split in LIBRIMIX_FOLDERS.items():
        data_dir = _existing_folder(root / name, "kaldi-style data")
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
    with _staged(final) as folder:
        for split, (base, relatives, lines) in splits.items():
            samples = _measured(base, relatives, f"librimix {split}", progress)
            _write_split(folder, split, base, relatives, samples, {"rttm": lines})
    return final


# ---------------------------------------------------------------------- QbE: QUESST14
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
    root = _existing_folder(root, "QUESST14").resolve()
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
    with _staged(final) as folder:
        document_samples = _measured(root, documents, "quesst14 documents", progress)
        for group, (queries, hit_lines) in groups.items():
            _write_split(folder, f"queries_{group}", root, queries,
                         _measured(root, queries, f"quesst14 {group} queries", progress),
                         {"hits": hit_lines})
            _write_split(folder, f"docs_{group}", root, documents, document_samples, {})
    return final


# ------------------------------------------------------------------------ ER: IEMOCAP
def _iemocap_emotions(session: Path) -> dict[str, str]:
    """utterance id -> emotion label of a session's ``dialog/EmoEvaluation/*.txt``."""
    folder = _existing_folder(session / "dialog" / "EmoEvaluation", "IEMOCAP label")
    emotions = {}
    for path in sorted(folder.glob("*.txt")):
        if path.name.startswith("."):
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            fields = line.split("\t")
            if line.startswith("[") and len(fields) >= 3:
                emotions[fields[1].strip()] = fields[2].strip()
    return emotions


def prepare_iemocap(root: PathLike, out: PathLike, *, fold: int = 1, seed: int = 0,
                    overwrite: bool = False, progress: bool = True) -> Path:
    """``OUT/er`` from IEMOCAP, testing on session ``fold``."""
    root = _existing_folder(root, "IEMOCAP").resolve()
    if fold not in range(1, IEMOCAP_SESSIONS + 1):
        raise DataError(f"fold must be a session number 1-{IEMOCAP_SESSIONS}, got {fold!r}")
    _check_seed(seed)
    final = _target(out, "er", overwrite)
    kept: dict[bool, list[tuple[str, str]]] = {True: [], False: []}   # test session or not
    for number in range(1, IEMOCAP_SESSIONS + 1):
        session = _existing_folder(root / f"Session{number}", "IEMOCAP session")
        emotions = _iemocap_emotions(session)
        wav_folder = _existing_folder(session / "sentences" / "wav", "IEMOCAP sentences")
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
    with _staged(final) as folder:
        for split, items in splits.items():
            relatives = [relative for relative, _ in items]
            _write_split(folder, split, root, relatives,
                         _measured(root, relatives, f"iemocap {split}", progress),
                         {"er": [emotion for _, emotion in items]})
        write_dictionary(folder / "dict.er.txt", IEMOCAP_CLASSES)
    return final
