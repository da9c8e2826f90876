"""The CLI's one vocabulary: value types, and the options several commands share
(``--models``, ``--set``, ``--seconds``, ``--device``, ``--catalog``, deprecated spellings).

One declaration per option: a hand-written command (table, profile, measure, calibrate,
check) calls the ``add_*_option`` function here for every shared option; the trainer's
commands (train, superb, study) declare theirs as settings fields with
:func:`models.trainer.options.option`, and :mod:`.settings_arguments` turns each field into
the same argparse option through the same value types (a field's ``kind`` picks
:func:`device_type` or :func:`comma_list`, its ``bound`` :func:`positive_int` and kin). The
``data`` commands, mounted from the trainer's own parser (which may not import the CLI),
declare each of their repeated options once in :mod:`models.trainer.cli`.

One function per kind of value: :func:`positive_float`, :func:`positive_int` and
:func:`non_negative_int` (in :mod:`profiler.option_values`, where the data commands read them
too), :func:`one_of`, :func:`comma_list` (the one comma-list parser, by
element type) and :func:`device_type` (over :func:`profiler.option_values.check_device`,
which the trainer calls too). A bad value is argparse's one-line error and exit status 2."""
from __future__ import annotations

import argparse
import ast
import sys
from typing import Any, Callable, Optional, Sequence

from ..errors import UsageError
from ..option_values import (
    COMPUTE_DEVICES,
    PROFILE_MODES,
    ROOFLINE_ESTIMATE,
    SIMULATED_ROOFLINE_ESTIMATE,
    check_device,
    device_help,
    positive_int,
    split_list,
)
from ..option_values import non_negative_int as non_negative_int  # the CLI's name for it too
from ..reference import PAPER_CATALOG


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


# The longest utterance accepted by --seconds: beyond it HuBERT's attention scores (12 heads
# x T x T float32, T = 1 + (samples - 400) // 320 frames of the zoo's front end at 16 kHz),
# the largest tensor of any zoo model, exceed the 2^63 - 1 bytes a PyTorch tensor may take
# (its storage size is a 64-bit integer): isqrt((2^63 - 1) // 48) = 438353264 frames, up to
# 140273044879 samples. tests/test_cli_table.py profiles the zoo's HuBERT at this length
# and one frame beyond it.
MAX_SECONDS = 140273044879 / 16000  # 8767065.3 s, about 101 days


def seconds_value(text: str) -> float:
    """A --seconds value: a positive number up to :data:`MAX_SECONDS`."""
    value = positive_float(text)
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"expected at most {MAX_SECONDS:.1f} (about 101 days: longer inputs overflow the "
            f"64-bit size of HuBERT's attention scores), got {text!r}")
    return value


def one_of(known: Sequence[str]):
    """The argparse type of a value among ``known`` (argparse's ``choices``, for the
    elements of a :func:`comma_list`)."""
    def parse(text: str) -> str:
        if text not in known:
            raise argparse.ArgumentTypeError(
                f"invalid choice: {text!r} (choose from {', '.join(known)})")
        return text

    return parse


def parse_value(text: str):
    """One reading of a ``--set`` value: true/false/none in any case, then a Python literal
    (int, float, string, tuple, list), else the text itself."""
    raw = text.strip()
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


def parse_set(items, option: str = "--set") -> dict:
    """``["layers=4", "frontend=wav2vec2"]`` -> ``{"layers": 4, "frontend": "wav2vec2"}``."""
    overrides = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UsageError(f"{option} {item!r}: expected KEY=VALUE, e.g. layers=4")
        overrides[key] = parse_value(text)
    return overrides


def add_set_option(parser, help_text: str) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.set``."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=f"{help_text}; repeatable (true/false/none in any case are "
                             "booleans/None, numbers are numbers)")


def comma_list(element: Callable[[str], Any] = str, what: str = "values"):
    """The argparse type of a comma list of ``element`` values: ``"a,b, c"`` -> ``[a, b, c]``;
    an empty list is an error that names ``what`` the list holds."""
    def parse(text: str) -> list:
        values = [element(part) for part in split_list(text)]
        if not values:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of {what}, got {text!r}")
        return values

    return parse


def checked_by(parse: Callable[[str], Any]):
    """The argparse type of a value read by ``parse`` (``Quantization.parse``,
    ``Budget.parse``...): its ``ValueError`` message becomes argparse's one-line error."""
    def check(text: str):
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return check


parse_model_list = comma_list(str, "models")


def add_models_option(parser, help_text: str, default: str = "all") -> None:
    """``--models NAMES``: comma lists, repeatable, gathered into one list in ``args.models``
    (None when not given)."""
    parser.add_argument("--models", action="extend", type=parse_model_list, metavar="NAMES",
                        help=f"{help_text}: comma-separated zoo names or 'all'; repeatable "
                             f"(default: {default})")


def add_seconds_option(parser, help_text: str, default=None, several: bool = False) -> None:
    """``--seconds``: utterance length(s) in seconds, positive, at most :data:`MAX_SECONDS`;
    ``several`` takes a comma list (``S[,S...]``)."""
    parser.add_argument("--seconds", default=default, help=help_text,
                        type=comma_list(seconds_value, "positive numbers") if several
                        else seconds_value, metavar="S[,S...]" if several else None)


def device_type(kinds: Sequence[str] = COMPUTE_DEVICES):
    """The argparse type of a ``--device`` among ``kinds``, present on this machine."""
    def parse(text: str) -> str:
        try:
            return check_device(text, kinds)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def add_device_option(parser, default: Optional[str], shown: str,
                      kinds: Sequence[str] = COMPUTE_DEVICES) -> None:
    """``--device``: one of ``kinds`` (``cuda:N`` too), checked when parsed."""
    parser.add_argument("--device", type=device_type(kinds), default=default,
                        help=f"{device_help(kinds)} (default: {shown})")


def add_timing_options(parser) -> None:
    """``--threads`` and ``--clock`` of the commands that time real work (measure, calibrate)."""
    from ..calibration import CLOCK_HELP, CLOCKS

    parser.add_argument("--threads", type=positive_int,
                        help="torch threads (default: torch's; 1 with --clock cpu)")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall", help=CLOCK_HELP)


def use_timing_options(args, device: str) -> None:
    """Apply ``--threads``; refuse ``--clock cpu`` off the CPU or beside more than one
    thread (the CPU clock adds the threads' times up: not a time), and give it one thread
    when ``--threads`` is not given."""
    if args.clock == "cpu" and device != "cpu":
        raise UsageError("--clock cpu times CPU work only: use it with --device cpu")
    if args.clock == "cpu":
        if args.threads not in (None, 1):
            raise UsageError(f"--clock cpu adds the threads' CPU times up, so it is a time "
                             f"only on one thread: use --threads 1, not {args.threads} (or "
                             f"--clock wall)")
        args.threads = 1
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


class DeprecatedAlias(argparse.Action):
    """An old option spelling that still works: stores into the new option's destination
    (appending, or extending with a list value, where the new one gathers) and prints a
    one-line notice on stderr."""

    def __init__(self, option_strings, dest, new_option: str, append: bool = False, **kwargs):
        self.new_option = new_option
        self.append = append
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: note: {option_string} is deprecated; use {self.new_option}",
              file=sys.stderr)
        if self.append:
            current = list(getattr(namespace, self.dest, None) or [])
            current += values if isinstance(values, list) else [values]
            setattr(namespace, self.dest, current)
        else:
            setattr(namespace, self.dest, values)


def add_deprecated_alias(parser, old: str, new: str, dest: str, append: bool = False,
                         type=None, metavar=None) -> None:
    """Keep ``old`` working as ``new`` (hidden from --help, with a deprecation notice)."""
    parser.add_argument(old, dest=dest, action=DeprecatedAlias, new_option=new, append=append,
                        type=type, metavar=metavar, help=argparse.SUPPRESS)


DEFAULT_CATALOG = PAPER_CATALOG


def add_mode_option(parser, inference: str, train: str) -> None:
    """``--mode inference|train``: what a profile counts; each command says what it shows."""
    parser.add_argument("--mode", choices=PROFILE_MODES, default=PROFILE_MODES[0],
                        help=f"inference (default): {inference}; train: {train}")


def add_backend_option(parser, work: str) -> None:
    """``--backend``: what trains or evaluates (``work``: 'training', 'evaluation')."""
    from ..training_commands import DEFAULT_BACKEND

    parser.add_argument("--backend", default=DEFAULT_BACKEND,
                        help=f"{work} backend (default: {DEFAULT_BACKEND})")


def add_output_option(parser, what: str, also_printed: bool = False) -> None:
    """``--output FILE``: ``what`` written whole or not at all (:func:`write_output`), its
    folder checked before any work (:func:`check_output`); ``also_printed``: stdout gets it
    too."""
    parser.add_argument("--output", metavar="FILE",
                        help=(f"also write {what} to this file (default: stdout only)"
                              if also_printed else
                              f"write {what} to this file instead of stdout (default: stdout)"))


def check_output(output: Optional[str]) -> None:
    """A ``--output`` that cannot be written is one line before the work, not after it."""
    from ..files import check_writable

    if output:
        check_writable(output)


def write_output(text: str, output: Optional[str]) -> None:
    """``text`` to the ``--output`` file (atomically), else to stdout."""
    from ..files import atomic_write

    if output:
        atomic_write(output, text)
    else:
        sys.stdout.write(text)


def add_catalog_option(parser, default=DEFAULT_CATALOG,
                       help_default: str = DEFAULT_CATALOG) -> None:
    """``--catalog NAME|FILE.yaml``: the hardware an estimate is for."""
    from ..catalog import list_catalogs

    parser.add_argument("--catalog", default=default,
                        help=f"hardware catalog: a shipped name ({', '.join(list_catalogs())}) "
                             "or a path to a YAML file such as one written by `profile-encoder "
                             f"calibrate` (default {help_default})")


def add_estimate_option(parser, names: Sequence[str], default, default_text: str,
                        several: bool = False) -> None:
    """``--estimate``: the runtime model(s) among ``names``, each described once by the
    estimator's own table, so that profile, table, sweep and measure state them alike."""
    from ..estimator import ESTIMATES, KERNEL_ESTIMATES

    described = {**ESTIMATES, **KERNEL_ESTIMATES}
    listing = "; ".join(f"{name}: {described[name]}" for name in names)
    if several:
        parser.add_argument("--estimate", type=comma_list(one_of(names), "estimates"),
                            default=default, metavar="NAME[,NAME...]",
                            help=f"the estimates to compare with, comma-separated (default "
                                 f"{default_text}). {listing}")
    else:
        parser.add_argument("--estimate", choices=tuple(names), default=default,
                            help=f"runtime model (default {default_text}). {listing}")


def add_roofline_options(parser) -> None:
    """``--catalog`` and ``--estimate roofline|roofline-simulated`` of the per-module times
    (the text table's time column; json and csv hold counts only)."""
    add_catalog_option(parser)
    add_estimate_option(parser, (ROOFLINE_ESTIMATE, SIMULATED_ROOFLINE_ESTIMATE),
                        ROOFLINE_ESTIMATE, f"{ROOFLINE_ESTIMATE}; the text table's time column")
