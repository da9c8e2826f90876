"""A synthetic speech corpus made on the machine with espeak-ng, seeded and deterministic.

``synthesize_corpus(out_dir)`` writes four task folders, each with fairseq-style
manifests (see :mod:`models.trainer.data.manifest`)::

    OUT/
      corpus.json                 espeak-ng version; per task: seed, preset, sizes, counts, hours
      pretrain/                   sentences for HuBERT pre-training
        wav/{train,valid}/pretrain-<split>-<n>.wav
        train.tsv valid.tsv       manifests (root line = OUT/pretrain)
        train.wrd valid.wrd       the sentence spoken, one line per utterance
        train.ltr valid.ltr       the same in fairseq's letter format
        train.phones valid.phones with SynthOptions(phones=True): a phone per encoder
        dict.phones.txt           frame, from espeak-ng's phoneme events (see .phones)
      ks/                         keyword spotting, 12 classes, 1 s clips
        wav/{train,valid,test}/<class>/ks-<split>-<n>.wav
        {train,valid,test}.tsv
        {train,valid,test}.ks     class name per utterance
        dict.ks.txt               the 12 classes (index = line number)
      sid/                        speaker identification
        wav/{train,valid,test}/<speaker>/sid-<split>-<n>.wav
        {train,valid,test}.tsv .sid (speaker per utterance) .wrd
        dict.sid.txt              the speakers (index = line number)
      pr/                         phoneme recognition
        wav/{train,valid,test}/pr-<split>-<n>.wav
        {train,valid,test}.tsv .phn (IPA phonemes, space separated) .wrd
        dict.phn.txt              phoneme inventory with counts, most frequent first

Speakers are (accent, variant) pairs of espeak-ng voices; every utterance also varies
speaking rate, pitch and pitch range, level, and carries light white/pink/brown noise,
so that none of the tasks is trivial; :class:`~.synth_plan.SynthOptions` make the
pre-training corpus harder still (more voices, longer utterances, a fixed SNR,
reverberation) and add its phone labels; ``corpus.json`` records the options that differ
from the defaults, and at the defaults every file is as it always was. Keyword-spotting
splits use disjoint speakers; speaker-ID splits hold out utterances (not speakers);
``_silence_`` clips are noise only.
No word of a phoneme-recognition test sentence occurs in a training or valid sentence
(:func:`models.trainer.data.synth_plan.pr_text_parts`).

Determinism: every utterance is planned up front from the seed and rendered by a pure
function of its plan (espeak-ng is reloaded and reseeded per utterance), so the same
seed gives byte-identical files whatever ran before and however the work is split into
processes. Output goes to ``<task>.partial`` folders that are renamed into place when
complete; ``corpus.json`` is written last and marks a finished corpus.
"""
from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from ...constants import SAMPLE_RATE
from ..errors import DataError, check_seed
from ..fileio import (
    PathLike,
    check_output_folder,
    make_output_folder,
    staged_folder,
    write_json,
)
from . import CORPUS_FILE, PRETRAIN, espeak
from .audio import write_wav
from .manifest import (
    LETTER_LABELS,
    PHONEME_LABELS,
    WORD_LABELS,
    dictionary_path,
    labels_path,
    letters_line,
    manifest_path,
    write_counted_dictionary,
    write_dictionary,
    write_labels,
    write_manifest,
)
from .phones import frame_phones, write_phone_dictionary, write_phone_files
from .sentences import KS_CLASSES
from .synth_plan import (
    CORPUS_MANIFESTS,
    KS_CLIP_SAMPLES,
    TASKS,
    CorpusSizes,
    SynthOptions,
    UtterancePlan,
    check_tasks,
    plan_task,
    preset_name,
    resolve_sizes,
)

CORPUS_FORMAT = "encoder-profiler-synth/1"


def synthesize_corpus(out_dir: PathLike, *, seed: int = 0,
                      sizes: Union[str, CorpusSizes] = "default",
                      tasks: Sequence[str] = TASKS, overwrite: bool = False,
                      workers: int = 1, progress: bool = True,
                      options: SynthOptions = SynthOptions()) -> dict:
    """Synthesize the pre-training, KS, SID and PR corpora into ``out_dir``.

    ``sizes`` is a preset name (``"tiny"``, ``"default"``) or a :class:`CorpusSizes`.
    ``tasks`` selects a subset of :data:`TASKS`. An existing corpus is replaced only with
    ``overwrite=True``. ``workers`` > 1 renders in that many processes (same files).
    ``options`` shape the pre-training corpus (:class:`SynthOptions`).
    Returns the metadata also written to ``out_dir/corpus.json``.
    """
    sizes = resolve_sizes(sizes)
    tasks = check_tasks(tasks)
    check_seed(seed)
    out = Path(out_dir)
    kept_tasks = prepare_output(out, tasks, overwrite)
    started = time.perf_counter()
    entries = kept_tasks
    for task in tasks:
        plans = plan_task(task, sizes, seed, options)
        changed = options.changed() if task == PRETRAIN else {}
        entries[task] = {"seed": seed, "preset": preset_name(sizes), "sizes": asdict(sizes),
                         **({"options": changed} if changed else {}),
                         **build_task_folder(out, task, plans, CORPUS_MANIFESTS[task],
                                             partial(write_task_labels, task),
                                             partial(write_task_dictionary, task),
                                             workers=workers, progress=progress)}
    metadata = write_corpus_metadata(out, entries)
    if progress:
        count = sum(metadata["tasks"][task]["utterances"] for task in tasks)
        print(f"synthesized {count} utterances into {out} in "
              f"{time.perf_counter() - started:.1f} s")
    return metadata


def is_complete_corpus(folder: PathLike) -> bool:
    """Whether ``folder`` holds a finished corpus (``corpus.json`` is written last)."""
    return (Path(folder) / CORPUS_FILE).is_file()


def prepare_output(out: Path, tasks: tuple[str, ...], overwrite: bool) -> dict:
    """Check and clean ``out``; return the metadata of tasks that stay as they are."""
    check_output_folder(out)
    existing = [t for t in tasks if (out / t).exists()]
    if existing and not overwrite:
        raise DataError(f"{out}: already holds a corpus ({', '.join(existing)}); "
                        f"pass --force (overwrite=True in Python) to replace it")
    make_output_folder(out)
    kept = {}
    metadata_path = out / CORPUS_FILE
    if metadata_path.is_file():
        try:
            previous = json.loads(metadata_path.read_text(encoding="utf-8")).get("tasks", {})
        except (ValueError, AttributeError):
            previous = {}
        # Other tasks keep their entries while their folders are still there.
        kept = {t: v for t, v in previous.items() if t not in tasks and (out / t).is_dir()}
        # Until the new corpus is complete, nothing vouches for it.
        metadata_path.unlink()
    for task in TASKS:
        shutil.rmtree(out / f"{task}.partial", ignore_errors=True)
    return kept


# ----------------------------------------------------------------------------- rendering
def render_utterance(plan: UtterancePlan) -> np.ndarray:
    """The waveform (float32, 16 kHz) that ``plan`` describes; a pure function of it."""
    return render_with_phones(plan)[0]


def render_with_phones(plan: UtterancePlan) -> tuple[np.ndarray, Optional[list[str]]]:
    """``plan``'s waveform and, if ``plan.phones``, its phone label per encoder frame."""
    rng = np.random.default_rng(plan.seed)
    if plan.kind == "silence":
        noise = colored_noise(rng, KS_CLIP_SAMPLES, plan.noise_color)
        return (noise * 10.0 ** (plan.snr_db / 20.0)).astype(np.float32), None
    if plan.phones and plan.kind != "sentence":
        raise DataError(f"phone labels are made for sentences, not for {plan.kind!r} plans")
    voice = dict(variant=plan.variant, rate=plan.rate, pitch=plan.pitch,
                 pitch_range=plan.pitch_range, seed=plan.seed)
    if plan.phones:
        speech, events = espeak.synthesize_with_phones(plan.text, plan.voice, **voice)
    else:
        speech, events = espeak.synthesize(plan.text, plan.voice, **voice), None
    start, end = _active_span(speech, margin=int(0.02 * SAMPLE_RATE) if plan.kind == "word"
                              else int(0.15 * SAMPLE_RATE))
    speech = speech[start:end]
    if plan.rt60 > 0:
        # Its own generator, so that the noise drawn below is the dry corpus's.
        speech = reverberate(speech, plan.rt60, np.random.default_rng([plan.seed, 1]))
    speech = speech * (plan.peak / max(float(np.max(np.abs(speech))), 1e-6))
    if plan.kind == "word":
        speech = _place_in_clip(speech, KS_CLIP_SAMPLES, plan.offset)
    noise = colored_noise(rng, speech.size, plan.noise_color)
    mixed = np.clip(mix_at_snr(speech, noise, plan.snr_db), -1.0, 1.0).astype(np.float32)
    phones = frame_phones(events, mixed.size, offset=start) if events is not None else None
    return mixed, phones


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech`` plus unit-RMS ``noise`` scaled so that the power ratio of the two, over
    the whole signal, is ``snr_db`` (before any clipping)."""
    speech_rms = float(np.sqrt(np.mean(speech.astype(np.float64) ** 2)))
    return speech + noise * speech_rms * 10.0 ** (-snr_db / 20.0)


def reverberate(speech: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """``speech`` convolved with a synthetic room impulse response, cut to its length.

    The response is Gaussian noise under an exponential envelope whose energy decays by
    60 dB in ``rt60`` seconds (amplitude ``exp(-3 ln(10) t / rt60)``), ``rt60`` long, with
    a direct path of 1 at t = 0 (so phone positions do not move), normalized to unit
    energy.
    """
    length = max(1, int(round(rt60 * SAMPLE_RATE)))
    t = np.arange(length) / SAMPLE_RATE
    response = rng.standard_normal(length) * np.exp(-3.0 * np.log(10.0) * t / rt60)
    response[0] = 1.0
    response /= np.sqrt(np.sum(response ** 2))
    size = 1 << (speech.size + length - 2).bit_length()
    wet = np.fft.irfft(np.fft.rfft(speech.astype(np.float64), size) * np.fft.rfft(response, size),
                       size)[:speech.size]
    return wet.astype(np.float32)


# Sound, not silence: a frame whose RMS is within this many dB of the loudest frame's. The
# synthesizer trims with it and SD's reference speaker activity is drawn with it.
ACTIVITY_FLOOR_DB = -40.0


def loud_frames(waveform: np.ndarray, frame: int,
                floor_db: float = ACTIVITY_FLOOR_DB) -> np.ndarray:
    """Whether each whole ``frame``-sample frame of ``waveform`` (at least one) is within
    ``floor_db`` of the loudest, its RMS computed in the waveform's own dtype."""
    frames = len(waveform) // frame
    rms = np.sqrt(np.mean(waveform[:frames * frame].reshape(frames, frame) ** 2, axis=1))
    return rms > rms.max() * 10.0 ** (floor_db / 20.0)


def _active_span(waveform: np.ndarray, margin: int) -> tuple[int, int]:
    """(start, end) without leading/trailing audio quieter than ``ACTIVITY_FLOOR_DB`` below
    the loudest 10 ms, keeping ``margin`` samples on each side."""
    hop = SAMPLE_RATE // 100
    if waveform.size < hop:
        return 0, waveform.size
    active = np.flatnonzero(loud_frames(waveform.astype(np.float64), hop))
    start = max(0, active[0] * hop - margin)
    end = min(waveform.size, (active[-1] + 1) * hop + margin)
    return int(start), int(end)


def _place_in_clip(word: np.ndarray, length: int, offset: float) -> np.ndarray:
    if word.size > length:  # keep the middle of an overlong word
        start = (word.size - length) // 2
        return word[start:start + length]
    clip = np.zeros(length, dtype=np.float32)
    start = int(round(offset * (length - word.size)))
    clip[start:start + word.size] = word
    return clip


def colored_noise(rng: np.random.Generator, length: int, color: str) -> np.ndarray:
    """Unit-RMS noise with a flat (white), 1/f (pink) or 1/f^2 (brown) power spectrum."""
    if color == "white":
        white = rng.standard_normal(length)
    else:
        # Shape in the frequency domain; a power-of-two FFT size keeps the FFT fast.
        size = 1 << max(0, (length - 1).bit_length())
        spectrum = np.fft.rfft(rng.standard_normal(size))
        frequency = np.arange(spectrum.size, dtype=np.float64)
        frequency[0] = 1.0
        exponent = {"pink": 0.5, "brown": 1.0}[color]   # amplitude ~ f^-exponent
        white = np.fft.irfft(spectrum / frequency ** exponent, n=size)[:length]
    rms = float(np.sqrt(np.mean(white ** 2)))
    return (white / max(rms, 1e-12)).astype(np.float32)


Rendered = tuple[int, Optional[list[str]]]   # samples written, frame phone labels


def _render_to_file(plan: UtterancePlan, folder: str) -> Rendered:
    if hasattr(plan, "render_to"):   # plans that write more than a waveform (tasks.sd)
        return plan.render_to(Path(folder)), None
    waveform, phones = render_with_phones(plan)
    write_wav(Path(folder) / plan.relpath, waveform)
    return int(waveform.size), phones


def _render_chunk(plans: list[UtterancePlan], folder: str) -> list[Rendered]:
    return [_render_to_file(plan, folder) for plan in plans]


# ------------------------------------------------------------------------------ writing
def build_task_folder(out: Path, task: str, plans: list[UtterancePlan],
                      manifests: Sequence[str],
                      write_labels: Callable[[Path, str, list[UtterancePlan]], None],
                      write_dictionaries: Callable[[Path, list[UtterancePlan]], None], *,
                      workers: int, progress: bool) -> dict:
    """Every task folder of every corpus (this module's and the SUPERB tasks') is made here:
    ``plans`` rendered into ``OUT/<task>.partial``, one manifest per name in ``manifests``
    (the plans whose split is that name), ``write_labels(folder, manifest, plans)`` beside
    each, ``write_dictionaries(folder, plans)``, then renamed to ``OUT/<task>``. Plans that
    ask for phone labels also get ``<split>.phones`` and ``dict.phones.txt``. Returns the
    utterance counts and hours of the task's ``corpus.json`` entry."""
    final = out / task
    splits = {}
    with staged_folder(final) as staging:
        rendered = render_all(plans, staging, workers, progress, desc=f"synth {task}")
        for split in manifests:
            chosen = [(p, n, phones) for p, (n, phones) in zip(plans, rendered)
                      if p.split == split]
            # The root line names the final folder, which the staging folder becomes.
            write_manifest(manifest_path(staging, split), final,
                           [(p.relpath, n) for p, n, _ in chosen])
            write_labels(staging, split, [p for p, _, _ in chosen])
            if any(p.phones for p, _, _ in chosen):
                write_phone_files(staging, split, [phones for _, _, phones in chosen])
            splits[split] = {"utterances": len(chosen),
                             "hours": round(sum(n for _, n, _ in chosen) / SAMPLE_RATE / 3600, 4)}
        write_dictionaries(staging, plans)
        if any(p.phones for p in plans):
            write_phone_dictionary(staging,
                                   [phones for _, phones in rendered if phones is not None])
    return {"utterances": len(plans), "splits": splits}


def write_corpus_metadata(out: Path, tasks: dict) -> dict:
    """``OUT/corpus.json``, written last: it marks a finished corpus."""
    metadata = {"format": CORPUS_FORMAT, "sample_rate": SAMPLE_RATE,
                "espeak_ng": espeak.espeak_version(), "tasks": tasks}
    write_json(out / CORPUS_FILE, metadata)
    return metadata


def render_all(plans: list[UtterancePlan], folder: Path, workers: int, progress: bool,
                desc: str) -> list[Rendered]:
    from tqdm import tqdm

    bar = tqdm(total=len(plans), desc=desc, unit="utt", disable=not progress)
    try:
        if workers <= 1:
            results = []
            for plan in plans:
                results.append(_render_to_file(plan, str(folder)))
                bar.update(1)
            return results
        # Chunks keep process start-up and pickling small; results come back in order, and
        # each file depends only on its plan, so the split does not change the output.
        size = max(1, min(32, len(plans) // (4 * workers) or 1))
        chunks = [plans[i:i + size] for i in range(0, len(plans), size)]
        results = []
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            for chunk, result in zip(chunks, pool.map(_render_chunk, chunks,
                                                      [str(folder)] * len(chunks))):
                results.extend(result)
                bar.update(len(chunk))
        return results
    finally:
        bar.close()


def write_task_labels(task: str, folder: Path, split: str, plans: list[UtterancePlan]) -> None:
    """The label files of one split of a task of this module's corpus."""
    if task == PRETRAIN:
        write_labels(labels_path(folder, split, WORD_LABELS), [p.text for p in plans])
        write_labels(labels_path(folder, split, LETTER_LABELS),
                     [letters_line(p.text.upper()) for p in plans])
    elif task == "ks":
        write_labels(folder / f"{split}.ks", [p.label for p in plans])
    elif task == "sid":
        write_labels(folder / f"{split}.sid", [p.label for p in plans])
        write_labels(labels_path(folder, split, WORD_LABELS), [p.text for p in plans])
    elif task == "pr":
        write_labels(labels_path(folder, split, PHONEME_LABELS), [p.label for p in plans])
        write_labels(labels_path(folder, split, WORD_LABELS), [p.text for p in plans])


def write_task_dictionary(task: str, folder: Path, plans: list[UtterancePlan]) -> None:
    """The dictionary of a task of this module's corpus (none for pre-training)."""
    if task == "ks":
        write_dictionary(dictionary_path(folder, "ks"), KS_CLASSES)
    elif task == "sid":
        speakers = list(dict.fromkeys(p.label for p in plans))  # planning order
        write_dictionary(dictionary_path(folder, "sid"), speakers)
    elif task == "pr":
        write_counted_dictionary(dictionary_path(folder, PHONEME_LABELS),
                                 [plan.label.split() for plan in plans])
