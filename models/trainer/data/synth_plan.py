"""Planning the synthetic corpus: sizes, speakers and one plan per utterance.

Every utterance is planned up front from the seed (voice, rate, pitch, level, noise,
text), so rendering (:mod:`.synth`) is a pure function of the plan and the same seed
gives the same corpus however the work is split. Planning only asks espeak-ng for the
phonemes of the phoneme-recognition sentences. :class:`SynthOptions` make the
pre-training corpus harder and label it with phones; at their defaults the plans (and so
the files) are exactly those of a corpus made before they existed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from ...constants import SAMPLE_RATE
from ..errors import DataError
from . import PRETRAIN, PRETRAIN_SPLITS, espeak
from .held_out_text import held_out_halves, sentence_from, split_words, word_disjoint_templates
from .sentences import KS_CLASSES, SILENCE_LABEL, UNKNOWN_LABEL, UNKNOWN_WORDS, make_sentence

TASKS = (PRETRAIN, "ks", "sid", "pr")
SPLITS = ("train", "valid", "test")   # of every task
# The manifests of each task folder (pre-training has no test split).
CORPUS_MANIFESTS = {PRETRAIN: PRETRAIN_SPLITS, "ks": SPLITS, "sid": SPLITS, "pr": SPLITS}


# English accents of espeak-ng (language codes) and voice variants that sound like
# speech; together they make the speaker pool. Variants with spaces in their names or
# that are robotic/whispered effects are left out.
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-us-nyc",
           "en-gb-x-gbclan", "en-gb-x-gbcwmd")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt",
            "klatt2", "klatt3", "adam", "Alex", "Alicia", "Andy", "Annie", "aunty", "belinda",
            "benjamin", "boris", "caleb", "david", "ed", "edward", "iven", "john", "linda",
            "max", "michel", "norbert", "paul", "pedro", "quincy", "rob", "robert", "steph",
            "travis", "victor", "zac")
# Voice variants beyond VARIANTS that still sound like a person (robotic, croaking and
# "Demonic"-style effects left out), for SynthOptions(more_voices=True).
EXTRA_VARIANTS = ("Andrea", "antonio", "Denis", "Diogo", "edward2", "Gene", "Gene2", "gustave",
                  "Henrique", "Hugo", "ian", "iven2", "iven3", "iven4", "Jacky", "Lee",
                  "marcelo", "Marco", "Mario", "Michael", "miguel", "Mike", "mike2", "Nguyen",
                  "pablo", "Reed", "steph2", "steph3", "anika", "sandro", "shelby", "m8",
                  "grandpa", "grandma", "klatt4", "klatt5", "klatt6", "whisper", "whisperf")
# Phoneme labels depend on the accent; these four share most of their inventory.
# Speech's corpus-wide prosody and noise, drawn per utterance where a task does not set
# them (the superb tasks' speech_plan draws from the same ranges): half-open integer ranges
# for rng.integers, [low, high) for rng.uniform.
RATES = (130, 211)               # espeak-ng words per minute
PITCHES = (25, 76)               # espeak-ng pitch, 0-100
PITCH_RANGES = (30, 81)
PEAKS = (0.3, 0.9)               # the rendered waveform's peak
SNRS_DB = (20.0, 40.0)           # speech over its added noise
NOISE_COLORS = ("white", "pink", "brown")
# A synthetic speaker (SID, ASV): its voice and variant, a habitual pitch and rate drawn
# once, and each utterance's jitter around them (half-open ranges for rng.integers).
SPEAKER_PITCHES, SPEAKER_RATES = (30, 71), (140, 201)
PITCH_JITTER, RATE_JITTER = (-4, 5), (-12, 13)

PR_ACCENTS = ("en-us", "en-gb", "en-gb-x-rp", "en-us-nyc")

KS_CLIP_SAMPLES = SAMPLE_RATE          # Speech Commands clips are 1 s


@dataclass(frozen=True)
class CorpusSizes:
    """Number of utterances per task and split.

    ``ks_per_class_*`` counts clips of each of the 12 classes; ``sid_*_per_speaker``
    counts utterances of each of ``sid_speakers`` speakers.
    """

    pretrain_train: int
    pretrain_valid: int
    ks_per_class_train: int
    ks_per_class_valid: int
    ks_per_class_test: int
    sid_speakers: int
    sid_train_per_speaker: int
    sid_valid_per_speaker: int
    sid_test_per_speaker: int
    pr_train: int
    pr_valid: int
    pr_test: int

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or value < 1:
                raise DataError(f"corpus size {field.name} must be a positive integer, "
                                f"got {value!r}")
        if self.sid_speakers > len(ACCENTS) * len(VARIANTS):
            raise DataError(f"at most {len(ACCENTS) * len(VARIANTS)} speakers are available")


PRESETS = {
    # 126 utterances, 3.5 minutes of audio, 7 MB; a few seconds: for tests and smoke runs.
    "tiny": CorpusSizes(pretrain_train=24, pretrain_valid=4,
                        ks_per_class_train=3, ks_per_class_valid=1, ks_per_class_test=1,
                        sid_speakers=4, sid_train_per_speaker=3, sid_valid_per_speaker=1,
                        sid_test_per_speaker=1,
                        pr_train=12, pr_valid=3, pr_test=3),
    # QUICK_CORPUS_SIZE: bigger than "tiny" (whose 12 keyword-spotting test clips cannot
    # tell 2x chance from luck), about 1 300 utterances, 25-40 s to render on two cores.
    "small": CorpusSizes(pretrain_train=240, pretrain_valid=16,
                         ks_per_class_train=30, ks_per_class_valid=10, ks_per_class_test=10,
                         sid_speakers=8, sid_train_per_speaker=12, sid_valid_per_speaker=3,
                         sid_test_per_speaker=5,
                         pr_train=120, pr_valid=20, pr_test=20),
    # About 3 700 utterances, 1.9 hours of audio, 220 MB; 2-3 minutes on 2 cores.
    # The KS and SID test splits hold about 1 000 items each (1 020 and 1 008): enough for
    # two models about 3 points apart at 90 % accuracy to separate at 95 %.
    "default": CorpusSizes(pretrain_train=1200, pretrain_valid=60,
                           ks_per_class_train=80, ks_per_class_valid=15, ks_per_class_test=85,
                           sid_speakers=24, sid_train_per_speaker=16, sid_valid_per_speaker=3,
                           sid_test_per_speaker=42,
                           pr_train=400, pr_valid=50, pr_test=50),
}


# The corpus a quick run synthesizes when no --data is given: `train --tiny` or `--small`,
# and `superb` (its task folder then holds the same files as those runs' corpus).
QUICK_CORPUS_SIZE = "small"


@dataclass(frozen=True)
class UtterancePlan:
    """Everything needed to render one file; rendering is a pure function of this."""

    task: str
    split: str
    relpath: str          # relative to the task folder
    label: str            # class, speaker or space-separated phonemes ("" for pretrain)
    text: str             # what is spoken ("" for silence)
    voice: str
    variant: Optional[str]
    rate: int
    pitch: int
    pitch_range: int
    seed: int             # seeds espeak-ng and the noise
    kind: str             # "sentence", "word" or "silence"
    peak: float           # peak level of the speech before noise
    snr_db: float         # speech-to-noise ratio; for silence clips, the noise RMS in dBFS
    noise_color: str      # "white", "pink" or "brown"
    offset: float         # words: where in the 1 s clip the word starts (0..1 of the slack)
    phones: bool = False  # also produce frame-level phone labels (sentences only)
    rt60: float = 0.0     # reverberation time in seconds (0: dry)


@dataclass(frozen=True)
class SynthOptions:
    """What makes the pre-training corpus less trivial, and its phone labels.

    The defaults reproduce the corpus as it always was: one sentence per utterance, 43
    voice variants, speaking rate 130-210 wpm and pitch 25-75, noise at an SNR drawn from
    20-40 dB per utterance, no reverberation, no phone labels. ``phones`` records the
    synthesizer's phoneme events as frame labels (:mod:`.phones`); ``sentences`` makes
    each utterance that many sentences long (longer crops: a 3-sentence utterance lasts
    about 6-9 s); ``more_voices`` adds :data:`EXTRA_VARIANTS` (82 variants) and widens
    rate to 100-260 wpm and pitch to 10-90; ``snr_db`` fixes the speech-to-noise ratio of
    every utterance (white, pink or brown noise, power measured over the whole
    utterance); ``rt60`` convolves the speech with an exponentially decaying Gaussian-
    noise impulse response whose energy falls 60 dB in ``rt60`` seconds (unit direct
    path, normalized to unit energy), before the noise is added.
    """

    phones: bool = False
    sentences: int = 1
    more_voices: bool = False
    snr_db: Optional[float] = None
    rt60: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.sentences, int) or not 1 <= self.sentences <= 10:
            raise DataError(f"sentences per utterance must be an integer in 1..10, got "
                            f"{self.sentences!r}")
        if self.snr_db is not None and not -10.0 <= self.snr_db <= 80.0:
            raise DataError(f"snr_db must be in -10..80 dB, got {self.snr_db}")
        if not 0.0 <= self.rt60 <= 2.0:
            raise DataError(f"rt60 must be in 0..2 s, got {self.rt60}")

    def changed(self) -> dict:
        """The options that differ from the defaults (what ``corpus.json`` records)."""
        default = SynthOptions()
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}



def resolve_sizes(sizes: Union[str, CorpusSizes]) -> CorpusSizes:
    if isinstance(sizes, CorpusSizes):
        return sizes
    if sizes not in PRESETS:
        raise DataError(f"unknown corpus size {sizes!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[sizes]


def preset_name(sizes: CorpusSizes) -> Optional[str]:
    return next((name for name, preset in PRESETS.items() if preset == sizes), None)


def check_tasks(tasks: Sequence[str]) -> tuple[str, ...]:
    tasks = tuple(tasks)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise DataError(f"unknown tasks {unknown}; choose from {', '.join(TASKS)}")
    return tuple(t for t in TASKS if t in tasks)  # canonical order, no repeats


def task_rng(seed: int, task: str) -> np.random.Generator:
    return np.random.default_rng([seed, TASKS.index(task)])


def _utterance_seed(seed: int, task: str, split: str, index: int) -> int:
    split_id = SPLITS.index(split)
    return int(np.random.SeedSequence([seed, TASKS.index(task), split_id, index])
               .generate_state(1)[0] & 0x7FFFFFFF)


def _speaker_pool(rng: np.random.Generator) -> list[tuple[str, str]]:
    pool = [(accent, variant) for accent in ACCENTS for variant in VARIANTS]
    order = rng.permutation(len(pool))
    return [pool[i] for i in order]


def _speech_plan(rng, *, task, split, index, seed, relpath, label, text, voice, variant,
                 rate, pitch, kind, snr_range) -> UtterancePlan:
    return UtterancePlan(
        task=task, split=split, relpath=relpath, label=label, text=text, voice=voice,
        variant=variant, rate=int(rate), pitch=int(np.clip(pitch, 0, 100)),
        pitch_range=int(rng.integers(*PITCH_RANGES)),
        seed=_utterance_seed(seed, task, split, index),
        kind=kind, peak=round(float(rng.uniform(*PEAKS)), 4),
        snr_db=round(float(rng.uniform(*snr_range)), 2),
        noise_color=NOISE_COLORS[int(rng.integers(len(NOISE_COLORS)))],
        offset=round(float(rng.uniform(0.0, 1.0)), 4))


def _plan_pretrain(sizes: CorpusSizes, rng: np.random.Generator, seed: int,
                   options: SynthOptions = SynthOptions()) -> list[UtterancePlan]:
    variants = VARIANTS + EXTRA_VARIANTS if options.more_voices else VARIANTS
    rates, pitches = ((100, 261), (10, 91)) if options.more_voices else (RATES, PITCHES)
    # A fixed SNR is an interval of width 0: the generator is drawn from as before.
    snr_range = SNRS_DB if options.snr_db is None else (options.snr_db,) * 2
    plans = []
    for split, count in (("train", sizes.pretrain_train), ("valid", sizes.pretrain_valid)):
        for index in range(count):
            voice = ACCENTS[rng.integers(len(ACCENTS))]
            variant = variants[rng.integers(len(variants))]
            text = " ".join(make_sentence(rng) for _ in range(options.sentences))
            plan = _speech_plan(
                rng, task=PRETRAIN, split=split, index=index, seed=seed,
                relpath=f"wav/{split}/pretrain-{split}-{index:05d}.wav", label="",
                text=text, voice=voice, variant=variant,
                rate=rng.integers(*rates), pitch=rng.integers(*pitches), kind="sentence",
                snr_range=snr_range)
            if options.phones or options.rt60:
                plan = _replace(plan, phones=options.phones, rt60=float(options.rt60))
            plans.append(plan)
    return plans


# Accents and variants per split (the rest of the variants go to test).
_ACCENT_COUNTS = (5, 1, 2)
_VARIANT_COUNTS = (26, 6)


def voice_splits(rng: np.random.Generator) -> dict[str, list[tuple[str, str]]]:
    """Voices (accent, variant) per split, disjoint in accent *and* in variant: a test voice
    shares neither its accent nor its variant with any training voice."""
    accents = [ACCENTS[i] for i in rng.permutation(len(ACCENTS))]
    variants = [VARIANTS[i] for i in rng.permutation(len(VARIANTS))]
    a_train, a_valid = _ACCENT_COUNTS[0], _ACCENT_COUNTS[0] + _ACCENT_COUNTS[1]
    v_train, v_valid = _VARIANT_COUNTS[0], _VARIANT_COUNTS[0] + _VARIANT_COUNTS[1]
    accent_sets = (accents[:a_train], accents[a_train:a_valid], accents[a_valid:])
    variant_sets = (variants[:v_train], variants[v_train:v_valid], variants[v_valid:])
    pools = {}
    for split, accent_set, variant_set in zip(SPLITS, accent_sets, variant_sets):
        pool = [(a, v) for a in accent_set for v in variant_set]
        pools[split] = [pool[i] for i in rng.permutation(len(pool))]
    return pools


def _plan_ks(sizes: CorpusSizes, rng: np.random.Generator, seed: int) -> list[UtterancePlan]:
    speakers = voice_splits(rng)   # held out by accent and by variant, as the other tasks
    counts = {"train": sizes.ks_per_class_train, "valid": sizes.ks_per_class_valid,
              "test": sizes.ks_per_class_test}
    plans = []
    for split in SPLITS:
        index = 0
        for label in KS_CLASSES:
            for _ in range(counts[split]):
                voice, variant = speakers[split][rng.integers(len(speakers[split]))]
                if label == UNKNOWN_LABEL:
                    word = UNKNOWN_WORDS[rng.integers(len(UNKNOWN_WORDS))]
                else:
                    word = "" if label == SILENCE_LABEL else label
                plan = _speech_plan(
                    rng, task="ks", split=split, index=index, seed=seed,
                    relpath=f"wav/{split}/{label}/ks-{split}-{index:05d}.wav", label=label,
                    text=word, voice=voice, variant=variant, rate=rng.integers(120, 201),
                    pitch=rng.integers(*PITCHES), kind="word" if word else "silence",
                    snr_range=(10.0, 30.0))
                if not word:  # silence: noise level in dBFS instead of an SNR
                    plan = _replace(plan, snr_db=round(float(rng.uniform(-60.0, -30.0)), 2))
                plans.append(plan)
                index += 1
    return plans


def _plan_sid(sizes: CorpusSizes, rng: np.random.Generator, seed: int) -> list[UtterancePlan]:
    pool = _speaker_pool(rng)[:sizes.sid_speakers]
    # A speaker's identity is its voice plus its habitual pitch and rate.
    traits = [(int(rng.integers(*SPEAKER_PITCHES)), int(rng.integers(*SPEAKER_RATES)))
              for _ in pool]
    counts = (("train", sizes.sid_train_per_speaker), ("valid", sizes.sid_valid_per_speaker),
              ("test", sizes.sid_test_per_speaker))
    plans = []
    for split, per_speaker in counts:
        index = 0
        for (voice, variant), (pitch, rate) in zip(pool, traits):
            speaker = speaker_name(voice, variant)
            for _ in range(per_speaker):
                plans.append(_speech_plan(
                    rng, task="sid", split=split, index=index, seed=seed,
                    relpath=f"wav/{split}/{speaker}/sid-{split}-{index:05d}.wav", label=speaker,
                    text=make_sentence(rng), voice=voice, variant=variant,
                    rate=rate + rng.integers(*RATE_JITTER),
                    pitch=pitch + rng.integers(*PITCH_JITTER),
                    kind="sentence", snr_range=SNRS_DB))
                index += 1
    return plans


def pr_text_parts() -> dict[str, tuple[tuple[str, ...], dict[str, tuple[str, ...]]]]:
    """(templates, words) of the phoneme-recognition sentences per split: no word of a test
    sentence, function words included, occurs in a training or validation sentence.

    Training: the 12 templates of :func:`~.held_out_text.word_disjoint_templates`' training
    side and the training vocabulary (3/4 of each word class); valid: the same templates,
    half of the held-out vocabulary; test: the 3 templates that share no word with those
    ("we will ...", "my ...", "... wants to ... a ...") and the other half. The splits can
    say 214, 53 and 33 distinct words (content + function words: 192 + 22, 31 + 22,
    27 + 6). Planned with seed 0, distinct words / words spoken per split (voices held
    out by variant as well, see :func:`_plan_pr`):

    ========  ===========  ========  ========
    preset    train        valid     test
    ========  ===========  ========  ========
    tiny      62 / 98      19 / 23   15 / 20
    small     202 / 966    51 / 159  30 / 134
    default   214 / 3 210  52 / 395  33 / 328
    ========  ===========  ========  ========

    Every phoneme of the test vocabulary occurs in the training vocabulary (per accent);
    whether it occurs in the *drawn* training sentences is chance. It does for "small"
    (seeds 0-19) and "default" (seeds 0-5); "tiny", 12 training sentences, misses 1-4 of
    its 70-91 test phonemes at 15 of the seeds 0-19 (at seed 0, one "əʊ" of 71).
    """
    training, held_out = word_disjoint_templates()
    valid_words, test_words = held_out_halves()
    return {"train": (training, split_words(False)), "valid": (training, valid_words),
            "test": (held_out, test_words)}


def _plan_pr(sizes: CorpusSizes, rng: np.random.Generator, seed: int) -> list[UtterancePlan]:
    texts = pr_text_parts()
    # Voices held out by variant, as the other tasks' are; not by accent, since the
    # phoneme labels depend on it (every split uses the four PR_ACCENTS).
    variants = {split: list(dict.fromkeys(v for _, v in pool))
                for split, pool in voice_splits(rng).items()}
    plans = []
    for split, count in (("train", sizes.pr_train), ("valid", sizes.pr_valid),
                         ("test", sizes.pr_test)):
        for index in range(count):
            voice = PR_ACCENTS[rng.integers(len(PR_ACCENTS))]
            variant = variants[split][rng.integers(len(variants[split]))]
            text = sentence_from(rng, *texts[split])
            plans.append(_speech_plan(
                rng, task="pr", split=split, index=index, seed=seed,
                relpath=f"wav/{split}/pr-{split}-{index:05d}.wav",
                label=" ".join(espeak.phonemize(text, voice)), text=text, voice=voice,
                variant=variant, rate=rng.integers(*RATES), pitch=rng.integers(*PITCHES),
                kind="sentence", snr_range=SNRS_DB))
    return plans


PLANNERS = {PRETRAIN: _plan_pretrain, "ks": _plan_ks, "sid": _plan_sid, "pr": _plan_pr}


def speaker_name(voice: str, variant: str) -> str:
    """A synthetic speaker's label: its espeak-ng voice and variant."""
    return f"{voice}_{variant}"


def _replace(plan: UtterancePlan, **changes) -> UtterancePlan:
    values = asdict(plan)
    values.update(changes)
    return UtterancePlan(**values)


def plan_task(task: str, sizes: CorpusSizes, seed: int,
              options: SynthOptions = SynthOptions()) -> list[UtterancePlan]:
    """The plans of one task's utterances, in file order; ``options`` shape the
    pre-training corpus only."""
    if task == PRETRAIN:
        return _plan_pretrain(sizes, task_rng(seed, task), seed, options)
    return PLANNERS[task](sizes, task_rng(seed, task), seed)


def plan_corpus(*, seed: int = 0, sizes: Union[str, CorpusSizes] = "default",
                tasks: Iterable[str] = TASKS,
                options: SynthOptions = SynthOptions()) -> list[UtterancePlan]:
    """The utterance plans :func:`synthesize_corpus` would render (nothing is written)."""
    sizes = resolve_sizes(sizes)
    return [plan for task in check_tasks(tuple(tasks))
            for plan in plan_task(task, sizes, seed, options)]
