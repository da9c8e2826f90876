"""Manifests for real corpora, for users who have them: LibriSpeech and Speech Commands.

Both write the same formats as the synthetic corpus (:mod:`models.trainer.data.manifest`),
so the datasets, targets and evaluation code do not care where audio came from. Nothing
is downloaded; point ``root`` at an unpacked copy.

LibriSpeech: ``<root>/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` with
``<speaker>-<chapter>.trans.txt`` per chapter. Manifests only read FLAC headers; training
on the audio needs the optional ``soundfile`` package (``pip install soundfile``).

Speech Commands v0.02: ``<root>/<word>/<file>.wav``, ``validation_list.txt``,
``testing_list.txt`` and ``_background_noise_/*.wav``. The 12 SUPERB classes are the ten
keywords, ``_unknown_`` (every other word) and ``_silence_`` (1 s clips cut from the
background noise and written to ``out_dir``). SUPERB tests on the separately released
test set (``speech_commands_test_set_v0.02``, class folders including ``_silence_`` and
``_unknown_``); pass it as ``test_root`` to use it instead of ``testing_list.txt``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple, Optional, Sequence

import numpy as np

from ...constants import SAMPLE_RATE
from ..errors import DataError
from ..fileio import PathLike
from . import PRETRAIN
from .audio import audio_info, read_wav, write_wav
from .manifest import (
    LETTER_LABELS,
    WORD_LABELS,
    dictionary_path,
    labels_path,
    letters_line,
    manifest_path,
    read_manifest,
    write_dictionary,
    write_labels,
    write_manifest,
)
from .sentences import KEYWORDS, KS_CLASSES, SILENCE_LABEL, UNKNOWN_LABEL

_TRANSCRIPT_LINE = re.compile(r"^(\S+)\s+(.*)$")
_NOISE_FOLDER = "_background_noise_"


def existing_folder(path: PathLike, what: str) -> Path:
    """``path`` as a Path if it is a folder; else a :class:`DataError` naming ``what``."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: {what} folder does not exist")
    if not path.is_dir():
        raise DataError(f"{path}: not a folder (expected the {what} folder)")
    return path


def _check_audio(path: Path) -> int:
    info = audio_info(path)
    if info.sample_rate != SAMPLE_RATE:
        raise DataError(f"{path}: sample rate {info.sample_rate} Hz, expected {SAMPLE_RATE} Hz "
                        f"(resample the corpus first)")
    if info.channels != 1:
        raise DataError(f"{path}: {info.channels} channels, expected mono audio")
    if info.num_samples <= 0:
        raise DataError(f"{path}: no audio samples")
    return info.num_samples


# ------------------------------------------------------------- corpus folders, checked
def check_manifest_audio(manifest_path: PathLike) -> int:
    """Check every file of a manifest: readable, mono, 16 kHz, as long as listed. Cheap (headers
    only), so bad data fails before training starts. Returns the number of files."""
    manifest = read_manifest(manifest_path)
    for index in range(len(manifest)):
        manifest.check_length(index, _check_audio(manifest.audio_path(index)))
    return len(manifest)


def _refuse_empty(data: Path) -> None:
    if not any(data.iterdir()):
        raise DataError(f"{data}: empty data folder; make a corpus with "
                        f"'profile-encoder data synth --out {data}'")


def find_pretrain_folder(data: PathLike) -> Path:
    """``DATA/pretrain`` (a corpus made by ``data synth``) or ``DATA`` itself if it holds
    ``train.tsv`` and ``valid.tsv``; :class:`DataError` otherwise."""
    data = existing_folder(data, "data")
    for folder in (data / PRETRAIN, data):
        if manifest_path(folder, "train").is_file():
            if not manifest_path(folder, "valid").is_file():
                raise DataError(f"{folder}: has train.tsv but no valid.tsv")
            return folder
    _refuse_empty(data)
    raise DataError(
        f"{data}: no pre-training manifests (expected pretrain/train.tsv and "
        f"pretrain/valid.tsv, as 'profile-encoder data synth' writes)")


def find_task_folder(data: PathLike, task: str, title: str,
                     manifests: Sequence[str] = ("train", "valid", "test")) -> Path:
    """``DATA/<task>`` with its ``manifests`` (``<name>.tsv``); ``title`` names the task in
    the error (e.g. "keyword spotting")."""
    data = existing_folder(data, "data")
    folder = data / task
    missing = [name for name in manifests if not manifest_path(folder, name).is_file()]
    if missing:
        _refuse_empty(data)
        raise DataError(
            f"{data}: no {title} corpus (missing {task}/{missing[0]}.tsv); make one with "
            f"'profile-encoder data synth --out DIR --tasks {task}'")
    return folder


# --------------------------------------------------------------------------- LibriSpeech
def _librispeech_subsets(root: Path) -> dict[str, Path]:
    """Subset folders under ``root``, or ``root`` itself if it is a subset."""
    if any(root.glob("*/*/*.trans.txt")):
        return {root.name: root}
    return {p.name: p for p in sorted(root.iterdir())
            if p.is_dir() and any(p.glob("*/*/*.trans.txt"))}


class LibriSpeechUtterance(NamedTuple):
    utterance: str      # <speaker>-<chapter>-<n>
    relative: str       # <subset>/<speaker>/<chapter>/<utterance>.flac (LibriSpeech folder)
    samples: int
    text: str           # the transcript, upper case


def read_librispeech_subset(folder: Path, *, progress: bool) -> list[LibriSpeechUtterance]:
    """Every utterance of one LibriSpeech subset folder, sorted by id; each must be a 16 kHz
    mono FLAC (headers are read) with a transcript line."""
    from tqdm import tqdm

    entries = []
    transcripts = sorted(folder.glob("*/*/*.trans.txt"))
    for transcript in tqdm(transcripts, desc=f"librispeech {folder.name}", unit="chapter",
                           disable=not progress):
        for number, line in enumerate(transcript.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            match = _TRANSCRIPT_LINE.match(line.strip())
            if match is None:
                raise DataError(f"{transcript}:{number}: expected 'UTTERANCE-ID WORDS', "
                                f"got {line!r}")
            utterance, text = match.groups()
            audio = transcript.parent / f"{utterance}.flac"
            if not audio.is_file():
                raise DataError(f"{transcript}:{number}: audio file {audio.name} is missing")
            entries.append(LibriSpeechUtterance(
                utterance, audio.relative_to(folder.parent).as_posix(), _check_audio(audio),
                text.upper()))
    if not entries:
        raise DataError(f"{folder}: transcripts list no utterances")
    return sorted(entries)


def prepare_librispeech(root: PathLike, out_dir: PathLike, subsets: Optional[Sequence[str]] = None,
                        *, progress: bool = True) -> dict[str, Path]:
    """Write ``<subset>.tsv``, ``.wrd`` and ``.ltr`` into ``out_dir`` for LibriSpeech.

    ``root`` is the ``LibriSpeech`` folder (holding ``train-clean-100`` etc.) or one subset
    folder. ``subsets`` picks some (default: all found). Utterances are sorted by id;
    every file must be a 16 kHz mono FLAC with a transcript line. Returns the manifests.
    """
    root = existing_folder(root, "LibriSpeech")
    found = _librispeech_subsets(root)
    if not found:
        raise DataError(f"{root}: no LibriSpeech transcripts (<speaker>/<chapter>/*.trans.txt) "
                        f"found")
    if subsets is not None:
        missing = [s for s in subsets if s not in found]
        if missing:
            raise DataError(f"{root}: subsets {missing} not found (have {sorted(found)})")
        found = {name: found[name] for name in subsets}
    out = Path(out_dir)
    written = {}
    for name, folder in found.items():
        entries = read_librispeech_subset(folder, progress=progress)
        manifest = write_manifest(manifest_path(out, name), folder.parent,
                                  [(entry.relative, entry.samples) for entry in entries])
        write_labels(labels_path(out, name, WORD_LABELS), [entry.text for entry in entries])
        write_labels(labels_path(out, name, LETTER_LABELS),
                     [letters_line(entry.text) for entry in entries])
        written[name] = manifest
    return written


# ----------------------------------------------------------------------- Speech Commands
def _read_list(path: Path) -> set[str]:
    if not path.is_file():
        raise DataError(f"{path}: missing (a Speech Commands folder has "
                        f"validation_list.txt and testing_list.txt)")
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def _word_files(root: Path) -> list[tuple[str, str]]:
    """(relative path, folder name) of every clip in the word folders, sorted."""
    files = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != _NOISE_FOLDER):
        files.extend((f"{folder.name}/{wav.name}", folder.name)
                     for wav in sorted(folder.glob("*.wav")))
    return files


def _class_of(folder: str) -> str:
    if folder in KEYWORDS or folder == SILENCE_LABEL:
        return folder
    return UNKNOWN_LABEL


def _link(link: Path, target: Path) -> Optional[str]:
    """Make ``link`` point at ``target``; return the prefix to use in manifests."""
    target = target.resolve()
    try:
        if link.is_symlink() or link.exists():
            if link.is_symlink() and link.resolve() == target:
                return link.name
            if not link.is_symlink():
                raise DataError(f"{link}: exists and is not a link to {target}")
            link.unlink()
        link.symlink_to(target, target_is_directory=True)
        return link.name
    except OSError:
        return None  # no symlinks here: manifests use absolute paths instead


def _silence_clips(noise_files: list[Path], count: int, rng: np.random.Generator,
                   folder: Path, split: str) -> list[tuple[str, int]]:
    noises = [read_wav(path) for path in noise_files]
    noises = [n for n in noises if n.size >= SAMPLE_RATE]
    if not noises:
        raise DataError(f"no background noise file of at least 1 s in {noise_files[0].parent}")
    entries = []
    for index in range(count):
        noise = noises[int(rng.integers(len(noises)))]
        start = int(rng.integers(noise.size - SAMPLE_RATE + 1))
        gain = float(rng.uniform(0.1, 1.0))
        relative = f"{SILENCE_LABEL}/{split}/silence-{split}-{index:05d}.wav"
        write_wav(folder / relative, noise[start:start + SAMPLE_RATE] * gain)
        entries.append((relative, SAMPLE_RATE))
    return entries


def prepare_speech_commands(root: PathLike, out_dir: PathLike, *,
                            test_root: Optional[PathLike] = None,
                            silence_clips: Optional[dict[str, int]] = None, seed: int = 0,
                            train_on_testing_list: bool = False,
                            progress: bool = True) -> dict[str, Path]:
    """Write 12-class keyword-spotting manifests (``train/valid/test.tsv``, ``.ks``).

    Splits follow ``validation_list.txt`` and ``testing_list.txt`` (or ``test_root``
    for the test split; then the clips of ``testing_list.txt`` are left out of every split,
    as SUPERB's recipe does for v0.01: the separate test sets come from the same recordings
    project, and whether they share speakers with that list is not documented, so training
    on it could leak test speakers; ``train_on_testing_list=True`` trains on them anyway).
    ``_silence_`` clips, by default as many per split as the mean keyword class has, are cut from
    ``_background_noise_`` with a generator seeded by ``seed`` and written under
    ``out_dir/_silence_``. The manifests' root is
    ``out_dir``, which links to the corpus folders (``audio``, ``test_audio``).
    """
    from tqdm import tqdm

    root = existing_folder(root, "Speech Commands")
    out = Path(out_dir)
    validation = _read_list(root / "validation_list.txt")
    testing = _read_list(root / "testing_list.txt")
    if test_root is not None and train_on_testing_list:
        testing = set()
    files = _word_files(root)
    if not files:
        raise DataError(f"{root}: no word folders with .wav clips found")
    out.mkdir(parents=True, exist_ok=True)
    prefix = _link(out / "audio", root)
    base = prefix if prefix is not None else root.resolve().as_posix()
    splits: dict[str, list[tuple[str, int, str]]] = {"train": [], "valid": [], "test": []}
    for relative, folder in tqdm(files, desc="speech commands", unit="clip", disable=not progress):
        split = "valid" if relative in validation else "test" if relative in testing else "train"
        if split == "test" and test_root is not None:
            continue
        count = _check_audio(root / relative)
        splits[split].append((f"{base}/{relative}", count, _class_of(folder)))
    if test_root is not None:
        test_root = existing_folder(test_root, "Speech Commands test set")
        test_files = _word_files(test_root)
        if not test_files:
            raise DataError(f"{test_root}: no class folders with .wav clips found")
        prefix = _link(out / "test_audio", test_root)
        test_base = prefix if prefix is not None else test_root.resolve().as_posix()
        for relative, folder in test_files:
            splits["test"].append((f"{test_base}/{relative}", _check_audio(test_root / relative),
                                   _class_of(folder)))
    rng = np.random.default_rng(seed)
    noise_files = sorted((root / _NOISE_FOLDER).glob("*.wav"))
    written = {}
    for split, entries in splits.items():
        if not entries:
            continue
        wanted = (silence_clips or {}).get(split)
        has_silence = any(label == SILENCE_LABEL for *_, label in entries)
        if wanted is None:
            keyword_counts = [sum(1 for *_, label in entries if label == word) for word in KEYWORDS]
            wanted = 0 if has_silence else max(1, round(float(np.mean(keyword_counts))))
        if wanted:
            if not noise_files:
                raise DataError(f"{root / _NOISE_FOLDER}: no background noise .wav files to cut "
                                f"_silence_ clips from")
            entries += [(relative, count, SILENCE_LABEL) for relative, count in
                        _silence_clips(noise_files, wanted, rng, out, split)]
        written[split] = write_manifest(manifest_path(out, split), out,
                                        [(relative, count) for relative, count, _ in entries])
        write_labels(out / f"{split}.ks", [label for *_, label in entries])
    write_dictionary(dictionary_path(out, "ks"), KS_CLASSES)
    return written
