"""espeak-ng through ctypes: speech synthesis, phonemization and the voice lists.

The engine is the shared library bundled by the ``espeakng_loader`` package (``pip`` is
the only installer needed). Its C API (``speak_lib.h``) is used as documented:
``espeak_Initialize`` in ``AUDIO_OUTPUT_SYNCHRONOUS`` mode with a synth callback that
collects 16-bit samples, ``espeak_SetVoiceByName`` with ``language+variant`` names,
``espeak_SetParameter`` for rate/pitch/range, ``espeak_Synth``, and
``espeak_TextToPhonemes`` for IPA phonemes. :func:`synthesize_with_phones` also asks for
phoneme events (``espeakINITIALIZE_PHONEME_EVENTS`` with IPA names): each
``espeakEVENT_PHONEME`` carries the phoneme's start as a sample offset into the engine's
output (the event's ``sample`` field; ``audio_position`` is the same in whole ms).
Without it the engine is initialized exactly as before, so plain synthesis is unchanged.

Determinism. espeak-ng keeps state in static variables that ``espeak_Terminate`` does
not reset (pitch and phase trackers, noise generators), so the same call repeated in
one process gives slightly different audio. Every public function here therefore loads
the library afresh, seeds its random generators (``espeak_ng_SetRandSeed`` and the C
library's ``srand``), does its work and unloads it again (``dlclose``); that costs about
10 ms per call and makes each utterance a pure function of its arguments, whatever ran
before. This holds as long as nothing else in the process keeps the same library
loaded (then ``dlclose`` cannot unload it).

Thread safety. espeak-ng is not reentrant; one module-level lock serializes every call.
Use processes, not threads, to synthesize in parallel.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ...constants import SAMPLE_RATE
from ..errors import DataError
from .audio import resample

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000      # return an error instead of calling exit()
_INITIALIZE_PHONEME_EVENTS = 0x0001  # report espeakEVENT_PHONEME to the synth callback
_INITIALIZE_PHONEME_IPA = 0x0002     # ... with IPA names, not espeak's mnemonics
_EVENT_LIST_TERMINATED, _EVENT_PHONEME = 0, 7   # espeak_EVENT_TYPE
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PHONEMES_IPA = 0x02                # espeak_TextToPhonemes phonememode bit 1
_EE_OK = 0
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE, _PARAM_WORDGAP = 1, 3, 4, 7

RATE_RANGE = (80, 450)              # words per minute, espeakRATE_MINIMUM..MAXIMUM
DEFAULT_RATE = 175                  # espeakRATE_NORMAL
PITCH_RANGE = (0, 100)              # espeakPITCH and espeakRANGE: 0..100, 50 normal

# Separator asked from espeak_TextToPhonemes between the phonemes of a word (bits 8-23).
_PHONEME_SEPARATOR = "_"
# Stress marks are prosody, not phoneme identity; language-switch flags like "(fr)".
_STRESS_MARKS = re.compile("[\u02c8\u02cc]")
_LANGUAGE_FLAGS = re.compile(r"\([^)]*\)")


class EspeakError(DataError):
    """espeak-ng is unusable (library or data missing) or was asked for something it lacks."""


@dataclass(frozen=True)
class Voice:
    """A language voice: ``name`` for :func:`synthesize`'s ``voice`` argument is ``language``."""

    name: str          # human-readable, e.g. "English (America)"
    language: str      # e.g. "en-us"; pass this as ``voice``
    identifier: str    # file under espeak-ng-data/voices, e.g. "gmw/en-US"
    gender: int        # 0 unknown, 1 male, 2 female


class _Event(ctypes.Structure):
    # espeak_EVENT. ``id`` is a union of int, const char* and char[8]; phoneme events use
    # the char[8] (UTF-8, zero-terminated unless all 8 bytes are needed). ``sample`` is the
    # event's offset in samples of the engine's output since the start of the message.
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


class _VoiceStruct(ctypes.Structure):
    # espeak_VOICE
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p),
                ("identifier", ctypes.c_char_p), ("gender", ctypes.c_ubyte),
                ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte),
                ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.POINTER(_Event))

_LOCK = threading.Lock()
_chunks: list[np.ndarray] = []      # filled by the callback while _LOCK is held
_phone_events: list[tuple[int, str]] = []   # (engine sample, IPA name), likewise


def _collect_samples(wav, count, events) -> int:
    if wav and count > 0:
        _chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
    # The event list ends with espeakEVENT_LIST_TERMINATED; phoneme events only come when
    # the engine was initialized with _INITIALIZE_PHONEME_EVENTS.
    index = 0
    while events and events[index].type != _EVENT_LIST_TERMINATED:
        event = events[index]
        if event.type == _EVENT_PHONEME:
            name = bytes(event.id).split(b"\0", 1)[0].decode("utf-8", "replace")
            _phone_events.append((int(event.sample), name))
        index += 1
    return 0  # 0 = continue synthesis


# Kept at module level: the C side holds a pointer to it between calls.
_CALLBACK = _SynthCallback(_collect_samples)


def _paths() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError:
        raise EspeakError("espeak-ng is not available: install the 'espeakng-loader' package "
                          "(pip install espeakng-loader)") from None
    library, data = espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
    if not Path(library).is_file():
        raise EspeakError(f"espeak-ng library not found at {library}; reinstall espeakng-loader")
    if not (Path(data) / "phontab").is_file():
        raise EspeakError(f"espeak-ng data not found at {data}; reinstall espeakng-loader")
    return library, data


def _declare(lib: ctypes.CDLL) -> None:
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                 ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int,
                                          ctypes.c_int]
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_VoiceStruct)]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_VoiceStruct))
    lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    lib.espeak_Info.restype = ctypes.c_char_p
    lib.espeak_Terminate.restype = ctypes.c_int
    if hasattr(lib, "espeak_ng_SetRandSeed"):
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = ctypes.c_int


@functools.lru_cache(maxsize=1)
def _libc() -> Optional[ctypes.CDLL]:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def _unload(lib: ctypes.CDLL) -> None:
    import _ctypes
    handle = lib._handle
    close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)
    if close is not None:
        close(handle)


@contextmanager
def _engine(seed: int = 0, options: int = 0) -> Iterator[tuple[ctypes.CDLL, int]]:
    """A freshly loaded, initialized and seeded engine; yields (library, sample rate).
    ``options`` are extra espeak_Initialize option bits (phoneme events)."""
    library_path, data_path = _paths()
    with _LOCK:
        try:
            lib = ctypes.CDLL(library_path)
        except OSError as error:
            raise EspeakError(f"cannot load the espeak-ng library {library_path}: "
                              f"{error}") from None
        try:
            _declare(lib)
            rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(),
                                         _INITIALIZE_DONT_EXIT | options)
            if rate <= 0:
                raise EspeakError(f"espeak_Initialize failed (data folder {data_path})")
            lib.espeak_SetSynthCallback(_CALLBACK)
            if hasattr(lib, "espeak_ng_SetRandSeed"):
                lib.espeak_ng_SetRandSeed(int(seed) & 0x7FFFFFFF)
            libc = _libc()
            if libc is not None:  # some voice effects draw from rand() as well
                libc.srand(ctypes.c_uint(int(seed) & 0xFFFFFFFF))
            _chunks.clear()
            _phone_events.clear()
            yield lib, rate
        finally:
            _chunks.clear()
            _phone_events.clear()
            lib.espeak_Terminate()
            _unload(lib)


def _check_voice(voice: str, variant: Optional[str]) -> bytes:
    """Validate a voice and variant before the engine is entered; return the engine's name."""
    if not isinstance(voice, str) or not voice or "+" in voice:
        raise EspeakError(f"voice must be a language name such as 'en-us' (variants go in "
                          f"'variant'), got {voice!r}")
    # espeak-ng silently ignores an unknown variant, so check it against the list.
    if variant is not None and variant not in list_variants():
        raise EspeakError(f"unknown espeak-ng voice variant {variant!r}; see list_variants()")
    # espeak_SetVoiceByName matches voice names and file names ("en" for en-gb); accept a
    # language code too by mapping it to its voice file.
    by_language = {v.language.lower(): v.identifier.split("/")[-1] for v in list_voices()}
    name = by_language.get(voice.lower(), voice)
    return (name if variant is None else f"{name}+{variant}").encode()


def _select_voice(lib: ctypes.CDLL, name: bytes) -> None:
    if lib.espeak_SetVoiceByName(name) != _EE_OK:
        raise EspeakError(f"unknown espeak-ng voice {name.decode().split('+')[0]!r}; "
                          f"see list_voices() for languages and names")


def _check_range(what: str, value: int, bounds: tuple[int, int]) -> int:
    if not isinstance(value, (int, np.integer)) or not bounds[0] <= value <= bounds[1]:
        raise EspeakError(f"{what} must be an integer in {bounds[0]}..{bounds[1]}, got {value!r}")
    return int(value)


def synthesize(text: str, voice: str = "en-us", *, variant: Optional[str] = None,
               rate: int = DEFAULT_RATE, pitch: int = 50, pitch_range: int = 50,
               word_gap: int = 0, seed: int = 0, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Speak ``text`` and return a mono float32 waveform in [-1, 1] at ``sample_rate``.

    ``voice`` is a language voice (``"en-us"``, ``"en"``, ``"en-gb-scotland"``, ...; see
    :func:`list_voices`), ``variant`` a voice variant (``"m3"``, ``"f2"``, ``"klatt"``,
    ...; see :func:`list_variants`). ``rate`` is in words per minute (80..450), ``pitch``
    and ``pitch_range`` are espeak's 0..100 scales (50 normal), ``word_gap`` adds pauses
    between words in units of 10 ms. ``seed`` seeds the engine's noise generators; the
    same arguments always give the same samples. espeak-ng speaks at 22 050 Hz; the audio
    is resampled with an anti-aliased polyphase filter.
    """
    return _speak(text, voice, variant, rate, pitch, pitch_range, word_gap, seed,
                  sample_rate, phones=False)[0]


def synthesize_with_phones(text: str, voice: str = "en-us", *, variant: Optional[str] = None,
                           rate: int = DEFAULT_RATE, pitch: int = 50, pitch_range: int = 50,
                           word_gap: int = 0, seed: int = 0, sample_rate: int = SAMPLE_RATE
                           ) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """:func:`synthesize` plus the phonemes spoken: ``(waveform, events)``, where each event
    is ``(start, phoneme)``, ``start`` the sample of ``waveform`` (at ``sample_rate``) where
    the phoneme begins, in order. Phonemes are IPA without stress marks; ``""`` is a
    pause. The waveform equals :func:`synthesize`'s for the same arguments.
    """
    return _speak(text, voice, variant, rate, pitch, pitch_range, word_gap, seed,
                  sample_rate, phones=True)


def _speak(text, voice, variant, rate, pitch, pitch_range, word_gap, seed, sample_rate, *,
           phones: bool) -> tuple[np.ndarray, list[tuple[int, str]]]:
    if not isinstance(text, str) or not text.strip():
        raise EspeakError(f"nothing to speak: {text!r}")
    rate = _check_range("rate", rate, RATE_RANGE)
    pitch = _check_range("pitch", pitch, PITCH_RANGE)
    pitch_range = _check_range("pitch_range", pitch_range, PITCH_RANGE)
    word_gap = _check_range("word_gap", word_gap, (0, 100))
    voice_name = _check_voice(voice, variant)
    encoded = text.encode("utf-8") + b"\0"
    buffer = ctypes.create_string_buffer(encoded, len(encoded))
    options = _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA if phones else 0
    with _engine(seed, options) as (lib, engine_rate):
        _select_voice(lib, voice_name)
        for parameter, value in ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch),
                                 (_PARAM_RANGE, pitch_range), (_PARAM_WORDGAP, word_gap)):
            lib.espeak_SetParameter(parameter, value, 0)
        status = lib.espeak_Synth(buffer, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8,
                                  None, None)
        if status != _EE_OK:
            raise EspeakError(f"espeak_Synth failed with status {status} for {text!r}")
        pcm = np.concatenate(_chunks) if _chunks else np.zeros(0, np.int16)
        events = list(_phone_events)
    if pcm.size == 0:
        raise EspeakError(f"espeak-ng produced no audio for {text!r}")
    waveform = pcm.astype(np.float32) / np.float32(32768.0)
    # Event offsets move with the resampling: sample n at engine_rate is n * sample_rate /
    # engine_rate at sample_rate (rounded to the nearest sample).
    scale = sample_rate / engine_rate
    events = [(int(round(start * scale)), _STRESS_MARKS.sub("", name)) for start, name in events]
    return resample(waveform, engine_rate, sample_rate), events


def phonemize(text: str, voice: str = "en-us", *, keep_stress: bool = False,
              word_separator: Optional[str] = None) -> list[str]:
    """IPA phonemes of ``text`` as espeak-ng pronounces it with ``voice``.

    Returns one string per phoneme (diphthongs and long vowels are single phonemes, e.g.
    ``"oʊ"``, ``"ɜː"``). Stress marks are dropped unless ``keep_stress``; with
    ``word_separator`` set, that symbol is placed between words.
    """
    if not isinstance(text, str) or not text.strip():
        raise EspeakError(f"nothing to phonemize: {text!r}")
    encoded = text.encode("utf-8") + b"\0"
    buffer = ctypes.create_string_buffer(encoded, len(encoded))
    mode = _PHONEMES_IPA | (ord(_PHONEME_SEPARATOR) << 8)
    voice_name = _check_voice(voice, None)
    words: list[list[str]] = []
    with _engine() as (lib, _):
        _select_voice(lib, voice_name)
        pointer = ctypes.c_void_p(ctypes.addressof(buffer))
        # Each call translates up to a clause boundary and advances the pointer; it is set
        # to NULL once the end of the text is reached.
        while pointer.value:
            chunk = lib.espeak_TextToPhonemes(ctypes.byref(pointer), _CHARS_UTF8, mode)
            if chunk:
                words.extend(_split_phonemes(chunk.decode("utf-8"), keep_stress))
    phonemes: list[str] = []
    for word in (w for w in words if w):
        if word_separator is not None and phonemes:
            phonemes.append(word_separator)
        phonemes.extend(word)
    return phonemes


def _split_phonemes(chunk: str, keep_stress: bool) -> list[list[str]]:
    chunk = _LANGUAGE_FLAGS.sub("", chunk)
    if not keep_stress:
        chunk = _STRESS_MARKS.sub("", chunk)
    return [[p for p in word.split(_PHONEME_SEPARATOR) if p] for word in chunk.split()]


@functools.lru_cache(maxsize=1)
def _voice_table() -> tuple[tuple[Voice, ...], tuple[str, ...], str]:
    with _engine() as (lib, _):
        version = lib.espeak_Info(None).decode()
        voices = tuple(_voice_from_struct(v) for v in _list(lib, None))
        spec = _VoiceStruct()
        spec.languages = b"variant"
        variants = tuple(v.identifier.split("/")[-1] for v in
                         (_voice_from_struct(s) for s in _list(lib, ctypes.byref(spec))))
    return voices, variants, version


def _list(lib: ctypes.CDLL, spec) -> Iterator[_VoiceStruct]:
    array = lib.espeak_ListVoices(spec)
    index = 0
    while array[index]:
        yield array[index].contents
        index += 1


def _voice_from_struct(struct: _VoiceStruct) -> Voice:
    # "languages" is a list of (priority byte, zero-terminated name); c_char_p stops at
    # the first zero, which gives the priority byte plus the first (preferred) language.
    languages = struct.languages or b"\x00"
    return Voice(name=(struct.name or b"").decode(), language=languages[1:].decode(),
                 identifier=(struct.identifier or b"").decode(), gender=int(struct.gender))


def list_voices() -> list[Voice]:
    """The language voices of the bundled espeak-ng (first language of each)."""
    return list(_voice_table()[0])


def list_variants() -> list[str]:
    """Names of the voice variants (``"m1"``, ``"f3"``, ``"klatt"``, ``"Alex"``, ...)."""
    return list(_voice_table()[1])


def espeak_version() -> str:
    """Version string of the bundled espeak-ng library, e.g. ``"1.52.0"``."""
    return _voice_table()[2]
