"""Every option of pre-training, each defined once, and the presets built from them.

An option is a field of :class:`PretrainSettings`, made with
:func:`models.trainer.options.option`: its default, help text, bounds and preset values live
in the field. The command line (``profile-encoder train``), the adapter's requests
(``profiler.adapters.TrainRequest``) and the checks below are all derived from these
fields, so a new option is one new field.

Imports stay light (no torch): the command line builds its parser from this module.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from ...constants import ENCODER_RECEPTIVE_FIELD, SAMPLE_RATE
from ..autocast import AUTOCAST_CHOICES, AUTOCAST_HELP
from ..errors import DataError
from ..fileio import PathLike
from ..options import NON_NEGATIVE, POSITIVE, check_bounds, device_option, option

# Where a quantized student's activation scales start when its teacher quantizes the same
# activations to other levels (BiT's chain: W1A4 -> W1A2 -> W1A1).
STUDENT_SCALES_TEACHER = "teacher"    # BiT's code: a loaded step size is never set again
STUDENT_SCALES_DATA = "data"          # the first-batch rule, as under a float teacher
STUDENT_SCALES = (STUDENT_SCALES_TEACHER, STUDENT_SCALES_DATA)
# Settings a run's record lacks when it predates them, with the value its run had.
PREDATED = {"student_scales": STUDENT_SCALES_TEACHER}
STUDENT_SCALES_HELP = ("where a quantized student's activation scales start when its teacher "
                       "quantizes those activations to other levels (a chain's W1A4 -> "
                       "W1A2): 'data' (the first-batch rule, as under a float teacher) or "
                       "'teacher' (its learned step, kept, as BiT's code does)")

# --targets kinds (see PretrainSettings.targets and parse_targets).
MFCC_TARGETS, PHONE_TARGETS, FEATURE_TARGETS = "mfcc", "phones", "features"

# Preset names, as help text shows them.
TINY_PRESET = "--tiny"
SMALL_PRESET = "--small"
ITERATION_2_PRESET = "iteration 2"


# ----------------------------------------------------------------------- pre-training
@dataclass
class PretrainSettings:
    """Everything that defines a pre-training run (recorded in ``metadata.json``).

    The defaults are HuBERT Base's first iteration (fairseq) per process; ``tiny=True``
    replaces the unset ones with :data:`TINY` (minutes on two CPU cores). ``batch_size``
    is utterances per micro-batch and process: one optimizer step sees
    ``batch_size x world_size x accumulate`` utterances.
    """

    model: str = option(help="zoo name, e.g. sparseformer-dn-s (required unless --resume)")
    out: str = option(help="run folder (checkpoints, log.jsonl, metadata)", required=True,
                      transient=True)
    data: Optional[str] = option(
        None, "corpus folder from 'profile-encoder data synth' (or one with pretrain/train.tsv "
        "and valid.tsv)", shown="synthesize one into OUT/data")
    overrides: Dict[str, Any] = option(
        factory=dict, help="model config override, e.g. layers=4 (recorded in config.json)",
        deprecated=("--override",))
    tiny: bool = option(False, "small-scale preset: 250 steps of 8 x 2 s crops, 50 units, lr "
                               "3e-4, unmasked frames count too; the model keeps its full size")
    small: bool = option(False, "--tiny's recipe at the smallest budget whose masked-unit "
                                "accuracy clears the unit prior on the synthetic corpus: "
                                "1000 steps, validation every 100")
    resume: bool = option(False, "continue the run in --out from its newest checkpoint",
                          transient=True)
    steps: int = option(250_000, "optimizer steps", bound=POSITIVE,
                        presets={ITERATION_2_PRESET: 400_000, TINY_PRESET: 250,
                                 SMALL_PRESET: 1000})
    batch_size: int = option(8, "utterances per micro-batch and process", bound=POSITIVE,
                             presets={TINY_PRESET: 8}, deprecated=("--batch",))
    accumulate: int = option(1, "micro-batches per optimizer step", bound=POSITIVE)
    crop_seconds: float = option(250_000 / SAMPLE_RATE, "longest audio crop in seconds",
                                 bound=POSITIVE, shown="15.625, fairseq's 250 000 samples",
                                 presets={TINY_PRESET: 2.0})
    lr: float = option(5e-4, "peak learning rate (AdamW)", bound=POSITIVE,
                       presets={TINY_PRESET: 3e-4})
    warmup_steps: int = option(32_000, "linear warm-up steps, then polynomial decay to 0",
                               bound=NON_NEGATIVE, presets={TINY_PRESET: 25})
    weight_decay: float = option(0.01, "AdamW weight decay", bound=NON_NEGATIVE)
    betas: Sequence[float] = option((0.9, 0.98), "AdamW betas", command_line=False)
    eps: float = option(1e-6, "AdamW epsilon", bound=POSITIVE)
    clip_norm: float = option(10.0, "gradient norm clipping", bound=POSITIVE)
    masked_weight: float = option(1.0, "weight of the loss on masked frames (fairseq "
                                       "pred_masked_weight)", bound=NON_NEGATIVE, metavar="W")
    unmasked_weight: float = option(0.0, "weight of the loss on unmasked frames (fairseq "
                                         "pred_nomask_weight; HuBERT Base: 0)",
                                    bound=NON_NEGATIVE, metavar="W",
                                    presets={TINY_PRESET: 1.0})
    decay_power: float = option(1.0, "power of the polynomial learning-rate decay")
    seed: int = option(0, "random seed", bound=NON_NEGATIVE)
    targets: str = option(
        MFCC_TARGETS, "what masked prediction predicts: mfcc (k-means units of MFCC, HuBERT's "
        "iteration 1), phones (the corpus's frame phone labels from the synthesizer: "
        "supervised, needs a corpus from 'data synth --phones'; --clusters becomes the phone "
        "inventory's size), features:RUN:LAYER (k-means units of hidden state LAYER of the "
        "trained run RUN: HuBERT's iteration 2, the same as --iteration 2 --targets-from RUN "
        "--label-layer LAYER)", metavar="KIND")
    iteration: int = option(1, "1: k-means on MFCC; 2: k-means on a hidden layer of "
                               "--targets-from", choices=(1, 2))
    targets_from: Optional[str] = option(None, "iteration 2: the iteration-1 run folder whose "
                                               "hidden layer is clustered", metavar="RUN")
    label_layer: Optional[int] = option(None, "iteration 2: which hidden state to cluster",
                                        bound=NON_NEGATIVE, shown="half the depth")
    clusters: int = option(100, "k-means units", bound=POSITIVE,
                           presets={ITERATION_2_PRESET: 500, TINY_PRESET: 50})
    kmeans_max_frames: int = option(250_000, "frames k-means is fitted on, at most",
                                    bound=POSITIVE, presets={TINY_PRESET: 60_000})
    save_every: int = option(10_000, "steps between checkpoints", bound=POSITIVE,
                             presets={TINY_PRESET: 50, SMALL_PRESET: 100})
    log_every: int = option(100, "steps between log.jsonl lines", bound=POSITIVE,
                            presets={TINY_PRESET: 5})
    valid_every: int = option(10_000, "steps between validations", bound=POSITIVE,
                              presets={TINY_PRESET: 50, SMALL_PRESET: 100})
    keep: int = option(1, "checkpoints kept (the newest ones)", bound=POSITIVE)
    workers: int = option(0, "data-loading processes per training process (0: load in the "
                             "training loop; 4-8 for full-scale runs on GPUs)",
                          bound=NON_NEGATIVE, transient=True)
    teacher: Optional[str] = option(
        None, "distill (BiT): a trained run folder whose weights the student --model starts "
        "from and whose hidden states and unit distribution it learns; the data, units and "
        "model overrides default to the teacher's", metavar="RUN", shown="none, pre-train")
    chain: Optional[str] = option(
        None, "multi-distillation: the chain of precisions from the teacher's down, e.g. "
        "W32A32,W1A4,W1A2,W1A1; stage K trains OUT/stage-K-<precision> with stage K-1 as "
        "its teacher (stage 1: --teacher); rerun the command or --resume to continue",
        metavar="PRECISIONS", shown="one stage")
    student_scales: str = option(STUDENT_SCALES_TEACHER, f"distillation: {STUDENT_SCALES_HELP}",
                                 choices=STUDENT_SCALES, metavar="FROM")
    distill_hidden: float = option(1.0, "distillation: weight of the hidden-state error "
                                        "(BiT's rep loss)", bound=NON_NEGATIVE, metavar="W")
    distill_prediction: float = option(1.0, "distillation: weight of the soft cross-entropy "
                                            "against the teacher's unit distribution (BiT's "
                                            "logit loss)", bound=NON_NEGATIVE, metavar="W")
    distill_hubert: float = option(0.0, "distillation: weight of HuBERT's own masked-"
                                        "prediction loss on the units", bound=NON_NEGATIVE,
                                   metavar="W")
    distill_temperature: float = option(1.0, "distillation: temperature of the soft "
                                             "cross-entropy", bound=POSITIVE)
    scale_lr: float = option(1e-4, "learning rate of the quantizer scales of a quantized "
                                   "model (BiT's clip_lr; scales, biases and norms get no weight "
                                   "decay)", bound=POSITIVE)
    autocast: Optional[str] = option(None, AUTOCAST_HELP, choices=AUTOCAST_CHOICES,
                                     metavar="DTYPE", shown="none, float32 throughout")
    deepspeed: Optional[str] = option(None, "DeepSpeed JSON config (ZeRO stage 0-2)",
                                      metavar="CONFIG", shown="none, plain PyTorch")
    device: Optional[str] = device_option("this process's GPU if any", transient=True)
    progress: bool = option(True, "no progress bars or summary", flag="--quiet",
                            shown="both shown", transient=True)


def _preset(settings: type, name: str) -> Dict[str, Any]:
    return {field.name: field.metadata["presets"][name] for field in dataclasses.fields(settings)
            if name in field.metadata["presets"]}


# Unset settings under --tiny. The model keeps its real size. Two changes to the recipe,
# both measured on sparseformer-dn-s (16 post-LN layers) on the synthetic corpus:
# - lr 3e-4: at 1e-3 (and 3e-3) the stack collapses to predicting the unit prior;
# - the unmasked frames count too (fairseq's pred_nomask_weight = 1): with the masked term
#   alone the validation unit accuracy stays at the most frequent unit's rate for the
#   whole budget, and such an upstream is worse than a random one for keyword spotting.
TINY: Dict[str, Any] = _preset(PretrainSettings, TINY_PRESET)
# --small: --tiny's recipe, longer. On the synthetic corpus the validation masked-unit
# accuracy of sparseformer-dn-s and conformer-s stays at the unit prior's rate for the
# first 300-600 steps and sits 0.02-0.04 above it from about step 700 on
# (reports/device/h200.md, reports/training/masked_prediction.md).
SMALL: Dict[str, Any] = {**TINY, **_preset(PretrainSettings, SMALL_PRESET)}
# Iteration 2 (HuBERT Base: 500 units of layer 6 of 12, 400k steps).
ITERATION_2: Dict[str, Any] = _preset(PretrainSettings, ITERATION_2_PRESET)
# Settings that may differ between a run and its resumption.
TRANSIENT = tuple(field.name for field in dataclasses.fields(PretrainSettings)
                  if field.metadata["transient"])


def parse_targets(text: str) -> tuple[str, Optional[str], Optional[int]]:
    """``--targets``: (kind, run, layer); run and layer only for ``features:RUN:LAYER``."""
    if text in (MFCC_TARGETS, PHONE_TARGETS):
        return text, None, None
    prefix = FEATURE_TARGETS + ":"
    if not isinstance(text, str) or not text.startswith(prefix) or ":" not in text[len(prefix):]:
        raise DataError(f"--targets must be {MFCC_TARGETS}, {PHONE_TARGETS} or "
                        f"{FEATURE_TARGETS}:RUN:LAYER, got {text!r}")
    run, layer = text[len(prefix):].rsplit(":", 1)   # a run folder may hold a colon
    if not run or not layer.isdigit():
        raise DataError(f"--targets {text!r}: expected {FEATURE_TARGETS}:RUN:LAYER with a run "
                        f"folder and a layer number (0 = the encoder input)")
    return FEATURE_TARGETS, run, int(layer)


def _targets_as_iteration(given: Dict[str, Any]) -> Dict[str, Any]:
    """``--targets features:RUN:LAYER`` is iteration 2 on RUN's hidden state LAYER: one
    recipe, two spellings; given both, they must agree."""
    if "targets" not in given:
        return given
    kind, run, layer = parse_targets(given["targets"])
    if kind != FEATURE_TARGETS:
        return given
    implied = {"iteration": 2, "targets_from": run, "label_layer": layer}
    for key, value in implied.items():
        if given.get(key) is not None and given[key] != value:
            raise DataError(f"--targets {given['targets']} and --{key.replace('_', '-')} "
                            f"{given[key]} disagree; give one of them")
    return {**given, **implied}


def resolve_settings(model: str, out: PathLike, **given: Any) -> PretrainSettings:
    """Settings from the defaults, the ``tiny`` and ``iteration`` presets and the given
    (non-None) values; an unknown name is a ``TypeError``."""
    given = _targets_as_iteration({key: value for key, value in given.items()
                                   if value is not None})
    values: Dict[str, Any] = {}
    if given.get("iteration") == 2:
        values.update(ITERATION_2)
    if given.get("tiny") and given.get("small"):
        raise DataError("--tiny and --small are two presets: give one")
    if given.get("tiny"):
        values.update(TINY)
    if given.get("small"):
        values.update(SMALL)
    values.update(given)
    known = {field.name for field in dataclasses.fields(PretrainSettings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TypeError(f"unknown settings {unknown}")
    return PretrainSettings(model=model, out=str(out), **values)


def check_settings(s: PretrainSettings) -> None:
    """Raise :class:`DataError` (one clear line) for settings that cannot run."""
    import models

    if "num_classes" in s.overrides:
        raise DataError("the number of units is set with --clusters (it fixes num_classes), "
                        "not with an override")
    try:
        models.config(s.model, **s.overrides)
    except (ValueError, TypeError) as error:
        raise DataError(str(error)) from None
    check_bounds(s)
    if s.crop_seconds * SAMPLE_RATE < 2 * ENCODER_RECEPTIVE_FIELD:
        raise DataError(f"crop_seconds must be at least "
                        f"{2 * ENCODER_RECEPTIVE_FIELD / SAMPLE_RATE:g} s, got {s.crop_seconds}")
    if s.masked_weight == 0 and s.unmasked_weight == 0:
        raise DataError("masked_weight and unmasked_weight cannot both be 0")
    if s.clusters < 2:
        raise DataError(f"clusters must be at least 2, got {s.clusters}")
    kind, _, _ = parse_targets(s.targets)
    if kind == PHONE_TARGETS and s.iteration != 1:
        raise DataError("--targets phones and --iteration 2 do not combine: iteration 2's "
                        "units come from a trained run (--targets features:RUN:LAYER)")
    if kind != MFCC_TARGETS and s.teacher is not None:
        raise DataError(f"--teacher and --targets {s.targets} do not combine: a student "
                        f"learns its teacher's units")
    if s.iteration not in (1, 2):
        raise DataError(f"iteration must be 1 or 2, got {s.iteration!r}")
    if s.iteration == 2 and not s.targets_from:
        raise DataError("iteration 2 needs the run folder of an iteration-1 model "
                        "(--targets-from RUN)")
    if s.iteration == 1 and s.targets_from:
        raise DataError("--targets-from is for iteration 2 (add --iteration 2)")
    if s.teacher is None and s.chain is not None:
        raise DataError("--chain needs --teacher RUN (the full-precision run it starts from)")
    if s.teacher is not None and s.targets_from is not None:
        raise DataError("--teacher and --targets-from do not combine: a student learns its "
                        "teacher's units")
    if s.distill_hidden == 0 and s.distill_prediction == 0 and s.distill_hubert == 0:
        raise DataError("distill_hidden, distill_prediction and distill_hubert cannot all be 0")


def settings_record(s: PretrainSettings) -> Dict[str, Any]:
    """The settings a run records in ``metadata.json`` (and is resumed with)."""
    record = dataclasses.asdict(s)
    record["betas"] = list(s.betas)
    for key in TRANSIENT:
        record.pop(key, None)
    return record


def settings_for_resume(out: PathLike, given: Dict[str, Any]) -> PretrainSettings:
    """The settings of the run in ``out``, to resume it (:func:`resume_settings`)."""
    from . import checkpoint as ckpt

    metadata = ckpt.read_metadata(out)
    stored = metadata.get("settings")
    if not isinstance(stored, dict) or "model" not in stored:
        raise ckpt.CheckpointError(f"{Path(out) / ckpt.METADATA}: has no run settings")
    return resume_settings(stored, given, out)


def resume_settings(stored: Dict[str, Any], given: Dict[str, Any],
                    out: PathLike) -> PretrainSettings:
    """The settings a run (or a distillation chain) in ``out`` recorded, ``stored``, to
    resume it: explicitly given (non-None) values must agree with them, except the
    transient ones, which replace them; recorded keys these settings no longer have are
    left out, and settings added since take the values runs had before them."""
    for key, value in given.items():
        if value is None or key in TRANSIENT:
            continue
        old = stored.get(key)
        if isinstance(old, list):
            value = list(value)
        if key in stored and old != value:
            raise DataError(f"--resume: {key} was {old!r} in this run, not {value!r}; resume "
                            f"with the run's own settings or start a new run")
    known = {field.name for field in dataclasses.fields(PretrainSettings)}
    values = {**PREDATED, **{k: v for k, v in stored.items() if k in known and k not in TRANSIENT}}
    values["betas"] = tuple(values.get("betas", PretrainSettings.betas))
    values.update({k: v for k, v in given.items() if k in TRANSIENT and v is not None})
    values.update(out=str(out), resume=True)
    return PretrainSettings(**values)
