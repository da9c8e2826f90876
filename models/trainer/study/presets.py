"""A study's budgets (presets) and its variants: what each (model, seed) trains and which
upstreams each task's heads read.

Training variants of a model M: ``fp`` (M pre-trained with HuBERT's loss); ``bq`` (``bq-M``
distilled from that ``fp`` run through BiT's chain of precisions, ``--chain``); optionally
``bq-scratch`` (``bq-M`` pre-trained without a teacher, the control), ``bq-<type>``
ablations (``bq-M`` binarizing one module type only, distilled like ``bq``) and the
sensitivity variants ``bq-single`` (one stage, W32A32 -> W1A1, the study's recipe before the
chain), ``bq-dw-channel`` (``bq`` with one weight scale per channel of the binarized
depthwise convolutions) and ``bq-scales`` (``bq``'s chain with each stage's activation
scales from data where its teacher's levels differ). Evaluation-only variants ``fp-1L`` and
``bq-1L`` train heads on the ``fp`` and ``bq`` upstreams that read hidden states 1..L only
(state 0, the float front end and projection, left out). The anchors ``random`` and
``bq-random`` are evaluation-only too: heads on upstreams of M's and bq-M's shape with
random weights (``superb --random-init``, the seed's weights), which tell whether a teacher
learned anything a task uses.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Tuple, Union

from profiler.option_values import split_list

from ...constants import float_name, is_binarized
from ...quantization import FULL_PRECISION, MODULE_TYPES, W1A1
from ..data.synth_plan import PRESETS as CORPUS_PRESETS
from ..data.synth_plan import CorpusSizes, SynthOptions
from ..errors import DataError
from ..pretrain.distillation import parse_chain
from ..pretrain.settings import STUDENT_SCALES_DATA
from ..superb.settings import ALL_STATES, WITHOUT_STATE0
from .settings import (
    BQ_VARIANT,
    FP_VARIANT,
    SENSITIVITY_NAMES,
    SENSITIVITY_SWAPS,
    StudySettings,
    default_tasks,
)

# What a preset's fp teachers predict: MFCC units (HuBERT's iteration 1), the corpus's
# phone labels (supervised), or HuBERT's iteration 2 on an iteration-1 run the study
# trains first (ITERATION_1_VARIANT), clustering its hidden state L/2.
MFCC_TEACHERS, PHONE_TEACHERS, ITERATION_2_TEACHERS = "mfcc", "phones", "iteration-2"
TEACHER_TARGETS = (MFCC_TEACHERS, PHONE_TEACHERS, ITERATION_2_TEACHERS)
ITERATION_1_VARIANT = "fp-it1"


@dataclass(frozen=True)
class Preset:
    """Budgets of a study: pre-training settings (``train``), what distillation runs change
    of them (``distill``, per stage of a chain), SUPERB head settings, model overrides and
    the sizes of the synthesized corpus (``corpus``: pre-training, KS, SID and PR;
    ``task_size``: the other tasks' size name, ASR, SD...); its default ``seeds`` and
    ``tasks``; ``gated``: tasks whose students are evaluated only once the ``fp`` teacher
    beats the task's chance reference (its interval clear of chance); ``synth``: what
    shapes the pre-training corpus (phone labels, voices, reverberation); ``teachers``:
    the fp teachers' targets (:data:`TEACHER_TARGETS`)."""

    train: Dict[str, Any]
    superb: Dict[str, Any]
    overrides: Dict[str, Any]
    corpus: Union[str, CorpusSizes]
    task_size: str
    superb_by_task: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    distill: Dict[str, Any] = field(default_factory=dict)
    seeds: int = 3
    tasks: Optional[Tuple[str, ...]] = None     # None: the minimum study's
    gated: Tuple[str, ...] = ()
    synth: SynthOptions = SynthOptions()
    teachers: str = MFCC_TEACHERS   # what the fp teachers predict: one of TEACHER_TARGETS

    def __post_init__(self):
        # Presets are code, so a misspelt route is a programmer's error; caught here, at
        # import, rather than as an fp teacher silently trained on MFCC units.
        if self.teachers not in TEACHER_TARGETS:
            raise ValueError(f"Preset.teachers must be one of {', '.join(TEACHER_TARGETS)}, "
                             f"not {self.teachers!r}")


# The paper preset's corpus: KS at the default size (85 test clips per class, 1 020 in
# all), PR with 400 test utterances; SID is not evaluated (its sizes are the default's).
PAPER_CORPUS = replace(CORPUS_PRESETS["default"], pr_train=800, pr_valid=50, pr_test=400)

PRESETS = {
    # The paper's claim, chosen before the run: fewer, larger tasks and 5 seeds. The issue
    # asked for "about 6 hours" of 2 CPU cores; at the measured rates (`study --dry-run`,
    # budget.py; a study's own logged jobs price the seeds after) the trained runs take
    # 3.2 h, their heads 3.9, the random-init anchors (FP and BQ, every seed) 3.2 more,
    # 10.4 h in all (the first run logged 13.5 without most BQ SD heads;
    # --anchors-from copies the anchors of an earlier study on this corpus); in the second run
    # SD's feature extraction alone (1 600 mixtures through 40 upstreams, 8.6 minutes each)
    # was 5.8 h. The ASR students and anchors, 3.4 h more, run only if the fp teacher beats
    # chance. Teachers: HuBERT's two iterations at --small's recipe, 600 steps each, 100 units
    # each: iteration 1 on MFCC units (fp-it1), iteration 2 (fp) on k-means units of its
    # hidden state L/2, over a pre-training corpus with 82 voice variants and 0.3 s of
    # reverberation. On the first seed's pilot this self-supervised route beat random-init on
    # SD, KS and PR for conformer-s, where phone targets lost on SD
    # (reports/training/teacher_routes_pilot.md). Each of the chain's 3 stages 100 steps (300
    # in all; the one-stage recipe the chain replaced had 250, `bq-single` has 100). SD's and
    # ASR's heads 300 steps; KS's and PR's their defaults, 1 500. PR's heads ran 300 steps for
    # the gate's first 4 seeds of conformer-s and 3 of sparseformer-dn-s and stopped at PER
    # 80-88 % (chance 97 %): on conformer-s seed 3, 2 000 steps took the teacher from 85.4 to
    # 78.7 % and random-init from 84.6 to 82.4 %, so 300 steps measured the heads' budget more
    # than the upstreams. A PR head costs about 7 s per 300 steps beside 90 s of feature
    # extraction, so PR now runs its default and those 14 evaluations ran again. SD's head
    # costs 40-60 s per 300 steps after 7 minutes of features and stays at 300 (its best valid
    # step was the last in 9 of those 14 runs).
    "paper": Preset(train={"small": True, "steps": 600, "clusters": 100},
                    distill={"steps": 100}, superb={},
                    overrides={}, corpus=PAPER_CORPUS, task_size="default",
                    superb_by_task={task: {"steps": 300} for task in ("asr", "sd")},
                    seeds=5, tasks=("sd", "ks", "pr", "asr"), gated=("asr",),
                    synth=SynthOptions(phones=True, more_voices=True, rt60=0.3),
                    teachers=ITERATION_2_TEACHERS),
    # `train --tiny` (250 steps of 8 x 2 s crops) and the corpus it synthesizes.
    # The sequence heads get 500 steps (their defaults: 2 000 for ASR and SF, 1 500 for SD and PR):
    # on 2 CPU cores an ASR head takes about 13 minutes at 2 000 steps, and a study of two
    # encoders runs 4 of them per seed.
    "small": Preset(train={"tiny": True}, superb={}, overrides={}, corpus=CORPUS_PRESETS["small"],
                    task_size="small",
                    superb_by_task={task: {"steps": 500} for task in ("asr", "sd", "pr", "sf")}),
    # tests/train_fixtures.py's one narrow layer: seconds per job.
    "smoke": Preset(train=dict(steps=6, batch_size=2, crop_seconds=0.5, clusters=8,
                               kmeans_max_frames=4000, warmup_steps=2, save_every=3,
                               log_every=1, valid_every=3),
                    superb=dict(steps=20, eval_every=10),
                    overrides=dict(layers=1, dim=64, heads=2, sparse_block=8,
                                   sparse_summary=2),
                    corpus="tiny", task_size="tiny"),
    # HuBERT Base's first iteration; a real corpus is expected (--data).
    "full": Preset(train={}, superb={}, overrides={}, corpus="default", task_size="default"),
}


def preset_tasks(preset: Preset) -> str:
    """The preset's tasks as a comma list, those this installation has."""
    from ..superb.task_table import SUPERB_TASKS

    if preset.tasks is None:
        return default_tasks()
    return ",".join(task for task in preset.tasks if task in SUPERB_TASKS)


# The from-scratch control: bq-M pre-trained with HuBERT's loss, no teacher.
SCRATCH_VARIANT = f"{BQ_VARIANT}-scratch"
SINGLE_STAGE = "W32A32,W1A1"
# The random-init anchors: variant -> whether its upstream is the bq- build.
RANDOM_VARIANTS = {"random": False, f"{BQ_VARIANT}-random": True}
# Variants that exist only for encoders with convolutions (elsewhere they would be bq).
CONVOLUTION_VARIANTS = (f"{BQ_VARIANT}-convolution", SENSITIVITY_SWAPS["dw-channel"][BQ_VARIANT])
# The model overrides of bq-dw-channel: one weight scale per depthwise channel.
DW_CHANNEL_OVERRIDES = (("depthwise_scale", "channel"),)


@dataclass(frozen=True)
class Variant:
    name: str                  # fp, bq, bq-scratch, bq-attention, bq-single, ...
    student: bool              # built from the bq- name
    teacher: Optional[str]     # the variant it is distilled from
    modules: Optional[str]     # quantize_modules of an ablation
    chain: Optional[str] = None                       # the distillation chain it runs
    overrides: Tuple[Tuple[str, Any], ...] = ()       # model overrides of its own
    needs_convolution: bool = False                   # only for encoders with convolutions
    units_from: Optional[str] = None                  # iteration 2 on this variant's run
    train_options: Tuple[Tuple[str, Any], ...] = ()   # train settings of its own

    @property
    def model_overrides(self) -> Dict[str, Any]:
        """What its upstream is built with beyond the study's own overrides: the module type
        of an ablation, then the variant's own."""
        return {**({"quantize_modules": self.modules} if self.modules else {}),
                **dict(self.overrides)}

    @property
    def stages(self) -> List[str]:
        """The precisions the variant ran, teacher first (what ``results.json`` records)."""
        if self.chain or self.teacher:
            return [stage.label for stage in parse_chain(self.chain or SINGLE_STAGE)]
        return [(W1A1 if self.student else FULL_PRECISION).label]


def chosen_names(text: str, allowed, flag: str, what: str, spelling=lambda part: part
                 ) -> List[str]:
    """A comma list of ``allowed`` names, ``all`` or ``none``; one line for an unknown one."""
    text = text.strip().lower()
    if text in ("", "none"):
        return []
    if text == "all":
        return list(allowed)
    chosen = [spelling(part) for part in split_list(text)]
    if not chosen:   # "," named nothing: not the same as "none"
        raise DataError(f"{flag}: expected a comma list of {', '.join(allowed)}, all or none, "
                        f"got {text!r}")
    unknown = [part for part in chosen if part not in allowed]
    if unknown:
        raise DataError(f"{flag}: unknown {what} {unknown[0]!r}; choose from "
                        f"{', '.join(allowed)}, all or none")
    return list(dict.fromkeys(chosen))


def sensitivity_names(settings: StudySettings) -> List[str]:
    return chosen_names(settings.sensitivity, SENSITIVITY_NAMES, "--sensitivity", "variant")


def variants(settings: StudySettings) -> List[Variant]:
    """The training variants of every (model, seed), teachers before their students."""
    chain = settings.chain
    first = None
    chosen = []
    if PRESETS[settings.preset].teachers == ITERATION_2_TEACHERS:
        first = ITERATION_1_VARIANT
        chosen.append(Variant(first, False, None, None))
    chosen += [Variant(FP_VARIANT, False, None, None, units_from=first),
               Variant(BQ_VARIANT, True, FP_VARIANT, None, chain)]
    if settings.scratch:
        chosen.append(Variant(SCRATCH_VARIANT, True, None, None, units_from=first))
    chosen += [Variant(f"{BQ_VARIANT}-{kind}", True, FP_VARIANT, kind, chain,
                       needs_convolution=f"{BQ_VARIANT}-{kind}" in CONVOLUTION_VARIANTS)
               for kind in ablation_types(settings)]
    sensitivity = sensitivity_names(settings)
    if "single" in sensitivity:
        chosen.append(Variant(SENSITIVITY_SWAPS["single"][BQ_VARIANT], True, FP_VARIANT, None))
    if "dw-channel" in sensitivity:
        name = SENSITIVITY_SWAPS["dw-channel"][BQ_VARIANT]
        chosen.append(Variant(name, True, FP_VARIANT, None, chain, DW_CHANNEL_OVERRIDES,
                              needs_convolution=name in CONVOLUTION_VARIANTS))
    if "scales" in sensitivity:
        if settings.student_scales == STUDENT_SCALES_DATA:
            raise DataError("--sensitivity scales runs the chain with --student-scales data "
                            "beside bq; this study's bq already does")
        chosen.append(Variant(SENSITIVITY_SWAPS["scales"][BQ_VARIANT], True, FP_VARIANT, None,
                              chain, train_options=(("student_scales", STUDENT_SCALES_DATA),)))
    return chosen


def trained_variant(name: str) -> Optional[Variant]:
    """The training variant called ``name``, as any study that trains it defines it (the
    ablations, the control and the sensitivities all chosen); None for a name that no study
    trains (an evaluation variant such as ``bq-1L`` reads another's upstream)."""
    every = variants(StudySettings(scratch=True, ablations="all", sensitivity="all"))
    return next((variant for variant in every if variant.name == name), None)


def sensitivity_variants(names: List[str]) -> List[str]:
    """The variant names the sensitivities ``names`` (``--sensitivity``'s) add."""
    return list(dict.fromkeys(variant for name in names
                              for variant in SENSITIVITY_SWAPS.get(name, {}).values()))


def evaluated_variants(settings: StudySettings, trained: List[str]) -> List[Tuple[str, str, str]]:
    """(evaluation variant, upstream variant, hidden states) for the heads of each task;
    an iteration-1 run is only the source of its iteration 2's units."""
    chosen = [(name, name, ALL_STATES) for name in trained if name != ITERATION_1_VARIANT]
    if "state0" in sensitivity_names(settings):
        chosen += [(layers_only, name, WITHOUT_STATE0)
                   for name, layers_only in SENSITIVITY_SWAPS["state0"].items()
                   if name in trained]
    return chosen


def is_binarized_variant(variant: str) -> bool:
    """Whether a study variant's upstream is binarized: ``bq`` and every ``bq-...``
    (students, the control, ablations, ``bq-random``, ``bq-1L``)."""
    return is_binarized(variant + "-")


def module_ablation(variant: str) -> Optional[str]:
    """The module type a module-type ablation (``bq-attention``...) binarizes alone; None
    for any other variant."""
    kind = float_name(variant) if is_binarized(variant) else None
    return kind if kind in MODULE_TYPES else None


def ablation_types(settings: StudySettings) -> List[str]:
    return chosen_names(settings.ablations, MODULE_TYPES, "--ablations", "module type",
                        lambda part: part.replace("-", "_"))
