"""How an option's value is read from its text, one function per kind of value: comma lists,
whole numbers and device names. The command line (:mod:`profiler.commands.arguments`) turns
the ``ValueError`` of the list and device readers into argparse's one-line error (the whole
numbers are argparse types themselves, shared with the trainer's ``data`` commands, which
may not import the command line); the trainer (``pick_device``, the study's plan) calls
them on the settings it is given, so a value means the same from either side.

Counting core, no torch at import: ``--help`` answers at once.
"""
from __future__ import annotations

import argparse
from typing import Sequence

# The devices a command that really computes runs on; ``profile`` adds ``meta``.
COMPUTE_DEVICES = ("cpu", "cuda")
# What a profile counts: one forward, or one training step (forward, backward, optimizer).
PROFILE_MODES = ("inference", "train")
# The counting conventions (profiler.conventions defines them), the default first: named
# here so that --help lists them without importing the zoo's quantization.
DEFAULT_CONVENTION = "bayesian-bits"
PAPER_CONVENTION = "paper"
CONVENTION_NAMES = (DEFAULT_CONVENTION, PAPER_CONVENTION)
# The runtime estimates of a profile (profiler.estimator describes them, and the kernel
# ones): the deployed roofline, the roofline of the simulation as PyTorch runs it, and the
# paper's formula that Table 1's time column uses.
ROOFLINE_ESTIMATE = "roofline"
SIMULATED_ROOFLINE_ESTIMATE = "roofline-simulated"
PAPER_ESTIMATE = "paper"


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`PROFILE_MODES`, else a ``ValueError`` naming them."""
    if mode not in PROFILE_MODES:
        raise ValueError(f"mode must be one of {', '.join(PROFILE_MODES)}, got {mode!r}")
    return mode


def _whole_number(text: str, minimum: int, wanted: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (argparse's one-line error otherwise)."""
    return _whole_number(text, 1, "a positive whole number")


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number >= 0."""
    return _whole_number(text, 0, "a whole number >= 0")


def int_at_least(minimum: int):
    """An argparse type: a whole number >= ``minimum``."""
    def parse(text: str) -> int:
        return _whole_number(text, minimum, f"at least {minimum}")

    return parse


def split_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: blanks dropped, order kept (may be empty)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def _spelled(kinds: Sequence[str]) -> str:
    """``("meta", "cpu", "cuda")`` -> ``"meta, cpu or cuda"``."""
    return " or ".join(filter(None, (", ".join(kinds[:-1]), kinds[-1])))


def device_help(kinds: Sequence[str] = COMPUTE_DEVICES) -> str:
    """The one wording of a ``--device`` value: ``cpu, cuda or cuda:N``."""
    return _spelled(tuple(kinds) + ("cuda:N",) if "cuda" in kinds else tuple(kinds))


def check_device(text: str, kinds: Sequence[str] = COMPUTE_DEVICES) -> str:
    """``text`` if it names a device of ``kinds`` this machine has (``cuda:N`` counts as
    ``cuda``); a one-line ``ValueError`` otherwise."""
    kind, colon, index = text.partition(":")
    if kind not in kinds or (colon and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"{text!r}: expected {_spelled(kinds)}")
    if kind == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("no CUDA device is available")
    return text
