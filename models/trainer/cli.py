"""Command line for the data tools: ``synth``, manifests for real corpora, ``kmeans``.

Run as ``python -m models.trainer <command> ...``, or mount under another CLI with
:func:`add_data_parser` (``profile-encoder data synth --out DIR``). Bad input
(:class:`DataError`) is reported as one ``error: ...`` line on stderr with exit status 2.
An option several data commands share (``--seed``, ``--quiet``, ``--force``, the required
folders) is declared once, by an ``_add_*`` function here: the trainer may not import the
CLI's vocabulary (:mod:`profiler.commands.arguments`), which declares the other commands'.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from profiler.errors import UsageError
from profiler.option_values import int_at_least, non_negative_int, positive_int, split_list
from profiler.training_commands import DATA_COMMAND, TRAINING_COMMANDS

from .data import PRETRAIN
from .errors import DataError
from .pretrain.settings import PretrainSettings
from .superb.real_corpora.importers import (
    ASV_MIN_VALID_TRIALS,
    ASV_VALID_SPEAKERS,
    ASV_VALID_TRIALS,
    IEMOCAP_SESSIONS,
    IEMOCAP_TEST_SESSION,
    REAL_CORPORA,
)

EXIT_DATA_ERROR = 2
ALL_TASKS = "all"
# What `--tasks all` costs at --size default (the other SUPERB tasks' "small" presets rendered
# with one worker on a shared 2-core machine, scaled by their planned counts; stated in help).
ALL_TASKS_COST = "about 22700 files, 16 h of audio, 1.8 GB, 20 min with one worker"
DESCRIPTION = ("Offline training data: synthesize speech corpora (synth), manifests for "
               "LibriSpeech and Speech Commands (librispeech, speechcommands), SUPERB task "
               "folders from real corpora (" + ", ".join(REAL_CORPORA) + "), MFCC k-means "
               "targets (kmeans).")


class NameList(argparse.Action):
    """A list option of the data commands: names apart or in comma lists (``--tasks ks pr``
    or ``--tasks ks,pr``, the vocabulary of every other command), checked against
    ``allowed`` when given (argparse's ``choices`` would check the raw ``ks,pr``)."""

    def __init__(self, *args, allowed: Optional[Sequence[str]] = None, **kwargs):
        super().__init__(*args, nargs="+", **kwargs)
        self.allowed = allowed

    def __call__(self, parser, namespace, values, option_string=None):
        names = [name for value in values for name in split_list(value)]
        unknown = [name for name in names if self.allowed and name not in self.allowed]
        if unknown or not names:
            parser.error(f"argument {option_string}: " + (
                f"invalid choice {', '.join(unknown)} (choose from "
                f"{', '.join(self.allowed)})" if unknown else "expected names"))
        setattr(namespace, self.dest, names)


def _add_commands(parser: argparse.ArgumentParser) -> None:
    from .data.synth_plan import PRESETS, TASKS
    from .superb.tasks import TASKS as SUPERB

    # The tasks beyond the corpus of 'train' (pretrain, ks, sid, pr).
    beyond = tuple(task for task in SUPERB if task not in TASKS)

    commands = parser.add_subparsers(dest="data_command", metavar="COMMAND", required=True)
    synth = commands.add_parser(
        "synth", help="synthesize speech corpora with espeak-ng",
        description="Synthesize speech corpora with espeak-ng: " + PRETRAIN + " (for 'train') "
                    "and the SUPERB tasks " + ", ".join(SUPERB) + " (for "
                    "'superb'). The test splits of ks and " + ", ".join(beyond) + " are held "
                    "out by voice (accent and variant), and by vocabulary where a task has "
                    "words; pr's by voice variant and by every word (its accents are shared: "
                    "the phoneme labels depend on them).")
    _add_required(synth, "--out", "output folder")
    synth.add_argument("--size", default="default", choices=tuple(PRESETS),
                       help="size preset of every task: tiny (a few utterances per split, for "
                            "tests), small (what 'train --tiny' and 'superb' synthesize when "
                            "given no --data), default (test splits: ks 1020 clips, sid 1008, pr "
                            "50, asr 400 sentences, sd 300 mixtures, asv 2000 trials, ic 1200, "
                            "sf 1000, qbe 60 queries, er 1200) (default: %(default)s)")
    _add_seed(synth)
    synth.add_argument("--tasks", action=NameList, default=None, metavar="TASK",
                       help=f"any of {' '.join((PRETRAIN,) + SUPERB)}, or {ALL_TASKS} (default: "
                            f"{' '.join(TASKS)}, at --size default 3700 files, 1.9 h of audio, "
                            f"220 MB, 2-3 min; '{ALL_TASKS}' at --size default: "
                            f"{ALL_TASKS_COST})")
    synth.add_argument("--workers", type=positive_int, default=1,
                       help="processes to render with (same output; default: 1)")
    harder = synth.add_argument_group(
        "the pre-training corpus (pretrain only; without these it is exactly as before)")
    harder.add_argument("--phones", action="store_true",
                        help="record espeak-ng's phoneme events as a phone label per 20 ms "
                             "encoder frame (train.phones, valid.phones, dict.phones.txt), "
                             "for 'train --targets phones' (default: none)")
    harder.add_argument("--sentences", type=positive_int, default=1, metavar="N",
                        help="sentences per utterance: longer utterances, longer crops "
                             "(default: %(default)s)")
    harder.add_argument("--more-voices", action="store_true",
                        help="82 voice variants instead of 43, speaking rate 100-260 wpm "
                             "instead of 130-210, pitch 10-90 instead of 25-75 (default: "
                             "the 43 and the narrower ranges)")
    harder.add_argument("--snr", type=float, default=None, metavar="DB",
                        help="speech-to-noise ratio of every utterance, in dB (default: drawn "
                             "from 20-40 dB per utterance)")
    harder.add_argument("--rt60", type=float, default=0.0, metavar="SECONDS",
                        help="reverberation: an exponentially decaying noise impulse response "
                             "with this RT60 (default: 0, dry)")
    _add_force_and_quiet(synth)

    libri = commands.add_parser("librispeech", help="manifests for a LibriSpeech folder")
    _add_required(libri, "--root", "the LibriSpeech folder (or one subset)")
    _add_required(libri, "--out", "where to write <subset>.tsv/.wrd/.ltr")
    libri.add_argument("--subsets", action=NameList, default=None,
                       help="e.g. train-clean-100 (default: every subset found)")
    _add_quiet(libri)

    commands_parser = commands.add_parser("speechcommands",
                                          help="12-class KS manifests for Speech Commands v0.02")
    _add_required(commands_parser, "--root", "the unpacked v0.02 folder")
    _add_required(commands_parser, "--out", "where to write train/valid/test.tsv")
    commands_parser.add_argument("--test-root", default=None,
                                 help="the separate speech_commands_test_set_v0.02 folder; "
                                      "the testing_list.txt clips then train nothing "
                                      "(default: testing_list.txt of --root is the test set)")
    _add_seed(commands_parser, "seed for _silence_ clips")
    _add_quiet(commands_parser)

    for name, corpus in REAL_CORPORA.items():
        _add_real_corpus_command(commands, name, corpus)

    kmeans = commands.add_parser("kmeans", help="MFCC k-means targets (.km) for manifests",
                                 description="Fit k-means on the first manifest's MFCC "
                                             "features and label every manifest.")
    kmeans.add_argument("manifests", nargs="+", help="fairseq .tsv manifests")
    kmeans.add_argument("--clusters", type=positive_int, default=PretrainSettings.clusters,
                        help="units (default: %(default)s)")
    _add_seed(kmeans)
    kmeans.add_argument("--max-frames", type=positive_int,
                        default=PretrainSettings.kmeans_max_frames,
                        help="frames to fit on at most (default: %(default)s)")
    _add_quiet(kmeans)


def _add_real_corpus_command(commands, name: str, corpus) -> None:
    tasks = corpus.tasks
    folders = " and ".join(f"OUT/{task}" for task in tasks)
    parser = commands.add_parser(
        name, help=f"{corpus.corpus}: {folders}",
        description=f"{corpus.corpus}: write {folders}, the task folder(s) that "
                    f"'profile-encoder superb --task TASK --data OUT' reads, with SUPERB's "
                    f"splits. Manifests name the corpus's own 16 kHz audio files; nothing is "
                    f"copied.")
    _add_required(parser, "--root", corpus.root)
    _add_required(parser, "--out", f"the data folder to write {folders} into")

    if len(tasks) > 1:
        parser.add_argument("--tasks", action=NameList, allowed=tasks, default=list(tasks),
                            help=f"which task folders to write (default: {' '.join(tasks)})")

    if name == "librispeech-tasks":
        parser.add_argument("--lexicon", nargs="+", default=None, metavar="FILE",
                            help="pr's pronunciations: lines 'WORD PHONEME PHONEME ...', e.g. "
                                 "s3prl's librispeech-lexicon-200k-g2p.txt and "
                                 "librispeech-lexicon-allothers-g2p.txt; a word's first "
                                 "pronunciation counts; a transcript word missing from them "
                                 "is an error (required for pr)")
    elif name == "speechcommands-v0.01":
        parser.add_argument("--test-root", required=True,
                            help="the unpacked speech_commands_test_set_v0.01 folder, SUPERB's "
                                 "test set (required)")
        _add_seed(parser, "seed for the _silence_ clips cut from _background_noise_")
    elif name == "voxceleb1":
        parser.add_argument("--iden-split", default=None,
                            help="SID's split list, lines 'SPLIT PATH' with 1 train, 2 valid, "
                                 "3 test (default: ROOT/iden_split.txt)")
        parser.add_argument("--trials", default=None,
                            help="ASV's test trials, lines 'LABEL PATH1 PATH2' (default: "
                                 "ROOT/veri_test2.txt, the cleaned VoxCeleb1-O list)")
        parser.add_argument("--valid-speakers", type=positive_int, default=ASV_VALID_SPEAKERS,
                            help="training speakers held out for ASV's valid trials "
                                 "(default: %(default)s)")
        parser.add_argument("--valid-trials", type=int_at_least(ASV_MIN_VALID_TRIALS),
                            default=ASV_VALID_TRIALS,
                            help=f"ASV valid trials among them, half same-speaker, at least "
                                 f"{ASV_MIN_VALID_TRIALS} (default: %(default)s)")
        _add_seed(parser, "seed for choosing ASV's valid speakers and trials")
    elif name == "iemocap":
        parser.add_argument("--fold", type=int, default=IEMOCAP_TEST_SESSION,
                            choices=range(1, IEMOCAP_SESSIONS + 1), metavar="SESSION",
                            help=f"the session tested on, 1-{IEMOCAP_SESSIONS}; SUPERB reports "
                                 f"the mean of the folds (default: %(default)s)")
        _add_seed(parser, "seed for drawing the 20 %% of the other sessions that form valid")
    _add_force_and_quiet(parser)


# Each option several data commands share, declared once.
def _add_required(parser, option: str, help_text: str) -> None:
    parser.add_argument(option, required=True, help=f"{help_text} (required)")


def _add_seed(parser, help_text: str = "random seed") -> None:
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help=f"{help_text} (default: %(default)s)")


def _add_quiet(parser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress bars (default: shown)")


def _add_force_and_quiet(parser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="replace an existing corpus (default: refuse)")
    _add_quiet(parser)


def add_data_parser(subparsers, name: str = "data") -> argparse.ArgumentParser:
    """Add the ``data`` command group to another CLI's subparsers.

    The new parser's ``func`` default is :func:`run_data_command`; call
    ``args.func(args)`` and exit with its return value.
    """
    parser = subparsers.add_parser(name, help=TRAINING_COMMANDS[DATA_COMMAND],
                                   description=DESCRIPTION)
    _add_commands(parser)
    parser.set_defaults(func=run_data_command)
    return parser


def run_data_command(args: argparse.Namespace) -> int:
    """Run a parsed data command; return the exit status (2 for a :class:`DataError`)."""
    try:
        _dispatch(args)
    except (DataError, UsageError) as error:     # UsageError: an output that cannot be written
        # A CLI that mounts these commands sets error_prefix to speak with its own voice.
        print(f"{getattr(args, 'error_prefix', '')}error: {error}", file=sys.stderr)
        return EXIT_DATA_ERROR
    return 0


def _dispatch(args: argparse.Namespace) -> None:
    from .fileio import check_output_folder

    command = args.data_command
    if getattr(args, "out", None):      # before any corpus is read
        check_output_folder(args.out)
    if command == "synth":
        _synthesize(args)
    elif command == "librispeech":
        from .data.corpora import prepare_librispeech
        for subset, path in prepare_librispeech(args.root, args.out, args.subsets,
                                                progress=not args.quiet).items():
            print(f"{subset}: {path}")
    elif command == "speechcommands":
        from .data.corpora import prepare_speech_commands
        for split, path in prepare_speech_commands(args.root, args.out, test_root=args.test_root,
                                                   seed=args.seed,
                                                   progress=not args.quiet).items():
            print(f"{split}: {path}")
    elif command in REAL_CORPORA:
        for task, folder in _prepare_real_corpus(args).items():
            print(f"{task}: {folder}")
    elif command == "kmeans":
        from .pretrain.targets import build_targets
        written = build_targets(args.manifests, args.clusters, seed=args.seed,
                                max_frames=args.max_frames, progress=not args.quiet)
        for path in written["labels"]:
            print(f"labels: {path}")
        print(f"k-means: {written['kmeans']}")
    else:  # argparse only lets known commands through
        raise AssertionError(command)


def _prepare_real_corpus(args: argparse.Namespace) -> dict:
    """A ``REAL_CORPORA`` command: the task folders it wrote."""
    corpus = REAL_CORPORA[args.data_command]
    return corpus.write(args.root, args.out, overwrite=args.force, progress=not args.quiet,
                        **{option: getattr(args, option) for option in corpus.options})


def _synthesize(args: argparse.Namespace) -> None:
    """``data synth``: the pre-training corpus first, then the SUPERB tasks'."""
    from .data.synth import TASKS, synthesize_corpus
    from .data.synth_plan import SynthOptions
    from .superb.tasks import TASKS as SUPERB
    from .superb.tasks.common import synthesize_tasks

    known = (PRETRAIN,) + SUPERB
    chosen = args.tasks or TASKS
    unknown = [t for t in chosen if t not in known + (ALL_TASKS,)]
    if unknown:
        raise DataError(f"unknown tasks {unknown}; choose from {' '.join(known)} or {ALL_TASKS}")
    if ALL_TASKS in chosen:
        chosen = known
    options = dict(seed=args.seed, overwrite=args.force, workers=args.workers,
                   progress=not args.quiet)
    corpus_options = SynthOptions(phones=args.phones, sentences=args.sentences,
                                  more_voices=args.more_voices, snr_db=args.snr,
                                  rt60=args.rt60)
    if corpus_options.changed() and PRETRAIN not in chosen:
        raise DataError(f"--phones, --sentences, --more-voices, --snr and --rt60 shape the "
                        f"{PRETRAIN} corpus; add {PRETRAIN} to --tasks")
    if PRETRAIN in chosen:
        synthesize_corpus(args.out, sizes=args.size, tasks=[PRETRAIN], options=corpus_options,
                          **options)
    if any(t in SUPERB for t in chosen):
        synthesize_tasks(args.out, [t for t in SUPERB if t in chosen], size=args.size,
                         **options)


def build_parser(prog: str = "python -m models.trainer") -> argparse.ArgumentParser:
    """The stand-alone parser: the data commands at top level."""
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    _add_commands(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m models.trainer``; returns the exit status."""
    return run_data_command(build_parser().parse_args(argv))
