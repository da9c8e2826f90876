"""Manifests, label files and dictionaries in fairseq's plain-text formats.

``<split>.tsv``
    First line: the root folder (absolute). Every further line:
    ``relative/path.wav<TAB>num_samples``. fairseq's audio datasets read exactly this.
``<split>.<label>`` (``.km``, ``.ks``, ``.sid``, ``.phn``, ``.wrd``, ``.ltr``)
    One line per manifest line, in the same order: space-separated k-means units for
    ``.km``, a class name for ``.ks``/``.sid``, space-separated phonemes for ``.phn``,
    words for ``.wrd``, and fairseq's letter format (``H E L L O | W O R L D |``) for
    ``.ltr``.
``dict.<label>.txt``
    fairseq's dictionary format: one ``symbol count`` pair per line; a symbol's index is
    its line number (0-based) here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import DataError
from ..fileio import PathLike, write_text_atomic


@dataclass(frozen=True)
class Manifest:
    """A parsed fairseq ``.tsv`` manifest.

    ``root`` is the folder the relative paths are resolved against: the one written in
    the file, or the manifest's own folder when that one is gone (so a corpus that was
    moved as a whole still loads).
    """

    path: Path
    root: Path
    files: tuple[str, ...]
    num_samples: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.files)

    def audio_path(self, index: int) -> Path:
        """Absolute path of the ``index``-th audio file."""
        return self.root / self.files[index]

    def check_length(self, index: int, samples: int) -> None:
        """A one-line :class:`DataError` when the ``index``-th file's ``samples`` are not
        the count this manifest lists for it (the audio changed after it was written)."""
        if samples != self.num_samples[index]:
            raise DataError(f"{self.audio_path(index)}: {samples} samples, but {self.path} "
                            f"says {self.num_samples[index]} (stale manifest?)")

    def label_path(self, label: str) -> Path:
        """The label file that belongs to this manifest: ``train.tsv`` -> ``train.<label>``."""
        return labels_path(self.path.parent, self.path.stem, label)


def manifest_path(folder: PathLike, name: str) -> Path:
    """Where a corpus folder keeps its manifest ``name`` (``train``, ``valid``, ``test``,
    QbE's ``queries_valid``...): fairseq's ``<name>.tsv``."""
    return Path(folder) / f"{name}.tsv"


# The label kinds more than one module reads or writes (fairseq's extensions): each names
# its files <split>.<kind> (labels_path) and its symbols' dict.<kind>.txt (dictionary_path).
# A classification task's labels take the task's own name (.ks, .sid, .er, .ic).
UNIT_LABELS = "km"            # pre-training targets
WORD_LABELS = "wrd"
LETTER_LABELS = "ltr"
PHONEME_LABELS = "phn"
SLOT_LABELS = "slt"
SPEAKER_LABELS = "spk"
PHONE_LABELS = "phones"       # the pre-training corpus's frame phone labels (data.phones)


def labels_path(folder: PathLike, name: str, labels: str) -> Path:
    """Where a corpus folder keeps manifest ``name``'s ``labels`` file: ``<name>.<labels>``
    beside ``<name>.tsv``."""
    return Path(folder) / f"{name}.{labels}"


def dictionary_path(folder: PathLike, labels: str) -> Path:
    """Where a corpus folder keeps the symbols of its ``labels`` files (``ltr``, ``phn``,
    ``ks``...): fairseq's ``dict.<labels>.txt``."""
    return Path(folder) / f"dict.{labels}.txt"


def read_manifest(path: PathLike) -> Manifest:
    """Parse a fairseq ``.tsv`` manifest; raise :class:`DataError` if it is malformed."""
    path = Path(path)
    lines = _read_lines(path)
    if not lines:
        raise DataError(f"{path}: empty manifest (expected a root folder on the first line)")
    root = Path(lines[0].strip())
    files, counts = [], []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0]:
            raise DataError(f"{path}:{number}: expected 'relative/path<TAB>num_samples', "
                            f"got {line!r}")
        try:
            count = int(fields[1])
        except ValueError:
            raise DataError(f"{path}:{number}: sample count {fields[1]!r} is not an "
                            f"integer") from None
        if count <= 0:
            raise DataError(f"{path}:{number}: sample count must be positive, got {count}")
        files.append(fields[0])
        counts.append(count)
    if not files:
        raise DataError(f"{path}: manifest lists no audio files")
    if not root.is_dir() or not (root / files[0]).exists():
        if (path.parent / files[0]).exists():
            root = path.parent
        elif not root.is_dir():
            raise DataError(f"{path}: root folder {root} does not exist")
    return Manifest(path, root, tuple(files), tuple(counts))


def write_manifest(path: PathLike, root: PathLike, entries: Iterable[tuple[str, int]]) -> Path:
    """Write a fairseq ``.tsv`` manifest atomically; ``entries`` are (relative path, samples)."""
    lines = [str(Path(root).resolve())]
    for relative, count in entries:
        if "\t" in relative or "\n" in relative:
            raise DataError(f"cannot put file name {relative!r} in a tsv manifest")
        lines.append(f"{relative}\t{int(count)}")
    write_text_atomic(path, "\n".join(lines) + "\n")
    return Path(path)


def read_labels(path: PathLike, expected: int | None = None) -> list[str]:
    """Read a label file (one line per utterance); check the count if ``expected`` is set."""
    path = Path(path)
    lines = _read_lines(path)
    if expected is not None and len(lines) != expected:
        raise DataError(f"{path}: {len(lines)} label lines for a manifest of {expected} files")
    return lines


def write_labels(path: PathLike, lines: Sequence[str]) -> Path:
    """Write a label file atomically, one line per utterance."""
    for line in lines:
        if "\n" in line:
            raise DataError(f"{path}: a label line may not contain a line break: {line!r}")
    write_text_atomic(path, "".join(f"{line}\n" for line in lines))
    return Path(path)


def read_dictionary(path: PathLike) -> list[str]:
    """Read a fairseq ``dict.*.txt``; return the symbols in index order."""
    path = Path(path)
    symbols = []
    for number, line in enumerate(_read_lines(path), start=1):
        fields = line.split(" ")
        if len(fields) != 2 or not fields[0]:
            raise DataError(f"{path}:{number}: expected 'symbol count', got {line!r}")
        symbols.append(fields[0])
    if len(set(symbols)) != len(symbols):
        raise DataError(f"{path}: repeated symbols")
    if not symbols:
        raise DataError(f"{path}: empty dictionary")
    return symbols


def write_dictionary(path: PathLike, symbols: Sequence[str],
                     counts: Sequence[int] | None = None) -> Path:
    """Write a fairseq ``dict.*.txt`` atomically (count 1 for every symbol unless given)."""
    counts = [1] * len(symbols) if counts is None else list(counts)
    if len(counts) != len(symbols):
        raise DataError(f"{path}: {len(symbols)} symbols but {len(counts)} counts")
    for symbol in symbols:
        if not symbol or any(c.isspace() for c in symbol):
            raise DataError(f"{path}: dictionary symbol {symbol!r} is empty or has white space")
    write_text_atomic(path, "".join(f"{s} {int(c)}\n" for s, c in zip(symbols, counts)))
    return Path(path)


def write_counted_dictionary(path: PathLike, lines: Iterable[Sequence[str]]) -> Path:
    """A ``dict.*.txt`` of every symbol of ``lines`` with its count, most frequent first
    (ties in symbol order)."""
    counts: dict[str, int] = {}
    for line in lines:
        for symbol in line:
            counts[symbol] = counts.get(symbol, 0) + 1
    ordered = sorted(counts, key=lambda symbol: (-counts[symbol], symbol))
    return write_dictionary(path, ordered, [counts[symbol] for symbol in ordered])


# fairseq's word boundary in letter transcripts (.ltr) and slot sequences (.slt).
WORD_BOUNDARY = "|"


def letters_line(words: str) -> str:
    """fairseq's ``.ltr`` form of a transcript: letters spaced, '|' after every word."""
    return " ".join(" ".join(word) + f" {WORD_BOUNDARY}" for word in words.split())


def letters_to_words(symbols: Sequence[str]) -> str:
    """The words of a sequence of letters and word boundaries (:func:`letters_line`'s
    inverse, up to white space)."""
    return " ".join("".join(symbols).replace(WORD_BOUNDARY, " ").split())


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a file") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file") from None
    return text.splitlines()
