"""Every option of ``profile-encoder study``, each defined once (see :mod:`..options`).

Imports stay light (no torch): the command line builds its parser from this module.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

from profiler.files import REPORTS
from profiler.training_commands import DEFAULT_BACKEND

from ..autocast import AUTOCAST_CHOICES, AUTOCAST_HELP
from ..options import COMMA_LIST, POSITIVE, device_option, option
from ..pretrain.settings import STUDENT_SCALES, STUDENT_SCALES_HELP, STUDENT_SCALES_TEACHER
from ..superb.task_table import SUPERB_TASKS

# The minimum study: two encoders, FP and BQ-distilled, three seeds, five tasks.
MINIMUM_MODELS = "conformer-s,sparseformer-dn-s"
MINIMUM_TASKS = ("asr", "sd", "ks", "sid", "pr")
PRESET_NAMES = ("paper", "small", "smoke", "full")
# BiT's multi-distillation chain, which the bq variant runs.
BIT_CHAIN = "W32A32,W1A4,W1A2,W1A1"
# Evaluation-only variants: heads on layers 1..L of another variant's upstream.
# The study's two default variants of each model: its full-precision teacher and the BiT
# student distilled from it (every other variant is named after one of them).
FP_VARIANT, BQ_VARIANT = "fp", "bq"
LAYERS_ONLY_SUFFIX = "-1L"
# Each sensitivity (``--sensitivity`` name) -> the variants it adds, each in place of the
# default variant it replaces: {default: sensitivity variant}. bq-single: one stage W32A32
# -> W1A1; fp-1L and bq-1L: heads without hidden state 0 on the fp and bq upstreams;
# bq-dw-channel: per-channel depthwise scales; bq-scales: the chain with its stages'
# activation scales from data.
SENSITIVITY_SWAPS = {"single": {BQ_VARIANT: f"{BQ_VARIANT}-single"},
                     "state0": {FP_VARIANT: FP_VARIANT + LAYERS_ONLY_SUFFIX,
                                BQ_VARIANT: BQ_VARIANT + LAYERS_ONLY_SUFFIX},
                     "dw-channel": {BQ_VARIANT: f"{BQ_VARIANT}-dw-channel"},
                     "scales": {BQ_VARIANT: f"{BQ_VARIANT}-scales"}}
SENSITIVITY_NAMES = tuple(SENSITIVITY_SWAPS)


def default_tasks() -> str:
    """The minimum study's tasks that this installation evaluates."""
    return ",".join(task for task in MINIMUM_TASKS if task in SUPERB_TASKS)


@dataclass
class StudySettings:
    """A study: zoo models x precisions x seeds x SUPERB tasks, and what to do with it."""

    out: str = option("runs/study", "study folder: the corpus, every run folder, study.json "
                                    "and study.log.jsonl", metavar="DIR")
    models: str = option(MINIMUM_MODELS, "full-precision zoo models, each pre-trained, then "
                                         "distilled to its bq- version: comma-separated zoo "
                                         "names; repeatable", kind=COMMA_LIST, metavar="NAMES")
    seeds: Optional[int] = option(None, "seeds per model (0 .. N-1); each seed pre-trains, "
                                        "distills and evaluates anew on the same corpus",
                                  bound=POSITIVE, metavar="N",
                                  shown="the preset's: paper 5, the others 3")
    tasks: Optional[str] = option(None, "SUPERB tasks: comma-separated; repeatable",
                                  kind=COMMA_LIST, metavar="TASKS",
                                  shown="the preset's: paper sd,ks,pr and asr behind its gate; "
                                        "the others asr,sd,ks,sid,pr, those this installation "
                                        "has")
    chain: str = option(BIT_CHAIN, "the bq variant's distillation chain (BiT's multi-"
                                   "distillation), teacher first; each stage gets the "
                                   "distillation budget", metavar="CHAIN")
    sensitivity: str = option("none", "also run sensitivity variants (comma list, or all): "
                                      "single (bq-single: W32A32 -> W1A1 in one stage), state0 "
                                      "(fp-1L, bq-1L: heads on layers 1..L, without the float "
                                      "hidden state 0), dw-channel (bq-dw-channel: per-channel "
                                      "scales of the binarized depthwise convolutions; models "
                                      "with convolutions), scales (bq-scales: the chain with "
                                      "--student-scales data, beside bq's default rule)",
                            metavar="NAMES")
    deployed: bool = option(False, "score every binarized upstream (the bq- students and "
                                   "the bq-random anchors) deployed on packed 1-bit kernels, "
                                   "as superb --deployed does: on the CPU whatever --device "
                                   "says (their hidden states extract about 2x faster on 2 "
                                   "cores); part of the recipe",
                            shown="the training-time simulation")
    autocast: Optional[str] = option(None, f"every training job (teachers and students): "
                                           f"{AUTOCAST_HELP}; the heads and their feature "
                                           f"extraction stay float32",
                                     choices=AUTOCAST_CHOICES, metavar="DTYPE",
                                     shown="none, float32 throughout")
    student_scales: str = option(STUDENT_SCALES_TEACHER, f"the chains' students (train "
                                                         f"--student-scales): "
                                                         f"{STUDENT_SCALES_HELP}; part of "
                                                         f"the recipe",
                                 choices=STUDENT_SCALES, metavar="FROM")
    scratch: bool = option(False, "control: also pre-train each bq- model from scratch with "
                                  "HuBERT's loss (no teacher), with the distillation budget")
    ablations: str = option("none", "also distill bq- builds that binarize one module type "
                                    "only, the rest full precision (comma list of attention, "
                                    "convolution, feed_forward, or all); each with the "
                                    "distillation budget", metavar="TYPES")
    preset: str = option("paper", "budgets: paper (the paper's claim: 5 seeds, sd, ks at "
                                  "1 020 test clips, pr at 400 test utterances, asr gated; "
                                  "about 10 hours of 2 CPU cores with the random-init "
                                  "anchors, see --dry-run), small (train --tiny: 250 steps, "
                                  "minutes per run on 2 CPU cores; the asr, sd, pr and sf "
                                  "heads 500 steps), smoke (a one-layer model, "
                                  "seconds per run, for tests), full (HuBERT Base's recipe; "
                                  "give --data)",
                         choices=PRESET_NAMES)
    data: Optional[str] = option(None, "corpus folder (pretrain/ and one folder per task)",
                                 shown="synthesize one into OUT/data", metavar="DIR")
    anchors_from: Optional[str] = option(
        None, "copy the random-init anchors' evaluations (random, bq-random) of the earlier "
              "study (or its reports folder) DIR instead of running them again: they do not "
              "depend on training. Each copy is checked first (same corpus, head settings, "
              "upstream shape and seed; a mismatch stops the study with one line); anchors "
              "DIR lacks are evaluated", metavar="DIR", shown="evaluate every anchor")
    restore_from: Optional[str] = option(
        None, "continue a study whose folder was lost (a fresh machine) from its committed "
              "copy DIR (a reports folder 'study --report' wrote, with its corpus.json: a "
              "synthesized corpus's, or a --data folder's description): once OUT's corpus "
              "is made and checked against DIR's, copy DIR's finished evaluations and run "
              "records where OUT has none; a run "
              "held only as its record is trained again only when a job about to run reads "
              "it (--dry-run plans as if restored, copying nothing)",
        metavar="DIR", shown="none")
    steps: Optional[int] = option(None, "pre-training steps", bound=POSITIVE,
                                  shown="the preset's", metavar="N")
    distill_steps: Optional[int] = option(None, "distillation steps (also the from-scratch "
                                                "control's)", bound=POSITIVE, metavar="N",
                                          shown="the pre-training steps")
    superb_steps: Optional[int] = option(None, "SUPERB head training steps", bound=POSITIVE,
                                         metavar="N",
                                         shown="the preset's, else each task's default")
    overrides: Dict[str, Any] = option(factory=dict, help="model config override for every "
                                                          "model, e.g. layers=4")
    shard: str = option("1/1", "run shard I of N: shards split the (model, seed) chains, so "
                               "no job waits on another shard except for the synthesized "
                               "corpus, which shard 1 makes", metavar="I/N")
    gate_only: bool = option(False, "run only what the teacher gate needs: the corpus, the fp "
                                    "teachers, and the heads on them and on random-init fp "
                                    "upstreams of the same shape, seed by seed; the same "
                                    "command without it resumes the rest of the study")
    dry_run: bool = option(False, "list this shard's jobs, their state and commands, and "
                                  "the estimated CPU time of what is left; run nothing")
    report: bool = option(False, "regenerate the reports from the study's run folders "
                                 "(partial studies too); run nothing. It first copies each "
                                 "evaluation's results.json and per_item.json (or gated.json) "
                                 "into REPORTS/runs/ (reports/study/runs/, committed), then "
                                 "builds every table from that copy alone; without a study "
                                 "in OUT it rebuilds from the committed copy")
    reports: str = option(str(REPORTS / "study"), "where --report writes (markdown, PNG, "
                          "JSON); the default is the project's committed report, merged "
                          "with this study's runs (a report of another recipe there is "
                          "refused), wherever the command runs from",
                          shown="reports/study in the project's folder", metavar="DIR")
    launcher: Optional[str] = option(None, "run each training job as 'LAUNCHER -m profiler "
                                           "train ...', e.g. 'torchrun --nproc_per_node=8'",
                                     shown="in this process")
    deepspeed: Optional[str] = option(None, "DeepSpeed JSON config for every training job",
                                      metavar="CONFIG", shown="none, plain PyTorch")
    device: Optional[str] = device_option("a GPU if there is one")
    backend: str = option(DEFAULT_BACKEND, "training and evaluation backend")
    propagation_utterances: int = option(16, "validation utterances the error-propagation "
                                             "measure runs through each FP/BQ pair",
                                         bound=POSITIVE, metavar="N")
    progress: bool = option(True, "no progress bar or job lines", flag="--quiet",
                            shown="both shown")
