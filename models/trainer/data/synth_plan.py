"""Planning the synthetic corpus: sizes, speakers and one plan per utterance.

Every utterance is planned up front from the seed (voice, rate, pitch, level, noise,
text), so rendering (:mod:`.synth`) is a pure function of the plan and the same seed
gives the same corpus however the work is split. Planning only asks espeak-ng for the
phonemes of the phoneme-recognition sentences.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from ...constants import SAMPLE_RATE
from ..errors import DataError
from . import espeak
from .held_out_text import held_out_halves, sentence_from, split_words, word_disjoint_templates
from .sentences import KS_CLASSES, SILENCE_LABEL, UNKNOWN_LABEL, UNKNOWN_WORDS, make_sentence

TASKS = ("pretrain", "ks", "sid", "pr")
SPLITS = ("train", "valid", "test")   # of every task
# The manifests of each task folder (pre-training has no test split).
CORPUS_MANIFESTS = {"pretrain": ("train", "valid"), "ks": SPLITS, "sid": SPLITS, "pr": SPLITS}


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
# Phoneme labels depend on the accent; these four share most of their inventory.
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
    # The corpus `train --tiny` synthesizes when no --data is given, and `superb` without
    # --data: bigger than "tiny" (whose 12 keyword-spotting test clips cannot tell 2x chance
    # from luck), about 1 300 utterances, 25-40 s to render on two cores.
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
        pitch_range=int(rng.integers(30, 81)), seed=_utterance_seed(seed, task, split, index),
        kind=kind, peak=round(float(rng.uniform(0.3, 0.9)), 4),
        snr_db=round(float(rng.uniform(*snr_range)), 2),
        noise_color=("white", "pink", "brown")[int(rng.integers(3))],
        offset=round(float(rng.uniform(0.0, 1.0)), 4))


def _plan_pretrain(sizes: CorpusSizes, rng: np.random.Generator, seed: int) -> list[UtterancePlan]:
    plans = []
    for split, count in (("train", sizes.pretrain_train), ("valid", sizes.pretrain_valid)):
        for index in range(count):
            voice = ACCENTS[rng.integers(len(ACCENTS))]
            variant = VARIANTS[rng.integers(len(VARIANTS))]
            plans.append(_speech_plan(
                rng, task="pretrain", split=split, index=index, seed=seed,
                relpath=f"wav/{split}/pretrain-{split}-{index:05d}.wav", label="",
                text=make_sentence(rng), voice=voice, variant=variant,
                rate=rng.integers(130, 211), pitch=rng.integers(25, 76), kind="sentence",
                snr_range=(20.0, 40.0)))
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
                    pitch=rng.integers(25, 76), kind="word" if word else "silence",
                    snr_range=(10.0, 30.0))
                if not word:  # silence: noise level in dBFS instead of an SNR
                    plan = _replace(plan, snr_db=round(float(rng.uniform(-60.0, -30.0)), 2))
                plans.append(plan)
                index += 1
    return plans


def _plan_sid(sizes: CorpusSizes, rng: np.random.Generator, seed: int) -> list[UtterancePlan]:
    pool = _speaker_pool(rng)[:sizes.sid_speakers]
    # A speaker's identity is its voice plus its habitual pitch and rate.
    traits = [(int(rng.integers(30, 71)), int(rng.integers(140, 201))) for _ in pool]
    counts = (("train", sizes.sid_train_per_speaker), ("valid", sizes.sid_valid_per_speaker),
              ("test", sizes.sid_test_per_speaker))
    plans = []
    for split, per_speaker in counts:
        index = 0
        for (voice, variant), (pitch, rate) in zip(pool, traits):
            speaker = _speaker_name(voice, variant)
            for _ in range(per_speaker):
                plans.append(_speech_plan(
                    rng, task="sid", split=split, index=index, seed=seed,
                    relpath=f"wav/{split}/{speaker}/sid-{split}-{index:05d}.wav", label=speaker,
                    text=make_sentence(rng), voice=voice, variant=variant,
                    rate=rate + rng.integers(-12, 13), pitch=pitch + rng.integers(-4, 5),
                    kind="sentence", snr_range=(20.0, 40.0)))
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
                variant=variant, rate=rng.integers(130, 211), pitch=rng.integers(25, 76),
                kind="sentence", snr_range=(20.0, 40.0)))
    return plans


PLANNERS = {"pretrain": _plan_pretrain, "ks": _plan_ks, "sid": _plan_sid, "pr": _plan_pr}


def _speaker_name(voice: str, variant: str) -> str:
    return f"{voice}_{variant}"


def _replace(plan: UtterancePlan, **changes) -> UtterancePlan:
    values = asdict(plan)
    values.update(changes)
    return UtterancePlan(**values)


def plan_task(task: str, sizes: CorpusSizes, seed: int) -> list[UtterancePlan]:
    """The plans of one task's utterances, in file order."""
    return PLANNERS[task](sizes, task_rng(seed, task), seed)


def plan_corpus(*, seed: int = 0, sizes: Union[str, CorpusSizes] = "default",
                tasks: Iterable[str] = TASKS) -> list[UtterancePlan]:
    """The utterance plans :func:`synthesize_corpus` would render (nothing is written)."""
    sizes = resolve_sizes(sizes)
    return [plan for task in check_tasks(tuple(tasks))
            for plan in plan_task(task, sizes, seed)]
