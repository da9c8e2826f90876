"""The CLI's one vocabulary: argument types, ``--set KEY=VALUE``, ``--models``, deprecated
spellings. Every command builds its options from here, so a spelling means one thing
everywhere."""
from __future__ import annotations

import argparse
import ast
import sys

from ..errors import UsageError


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _whole_number(text: str, minimum: int, wanted: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, 1, "a positive whole number")


def non_negative_int(text: str) -> int:
    return _whole_number(text, 0, "a whole number >= 0")


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


def parse_model_list(text: str) -> list[str]:
    """``"a,b, c"`` -> ``["a", "b", "c"]``; an empty list is an error."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of models, got {text!r}")
    return names


def add_models_option(parser, help_text: str, default: str = "all") -> None:
    """``--models NAMES``: comma lists, repeatable, gathered into one list in ``args.models``
    (None when not given)."""
    parser.add_argument("--models", action="extend", type=parse_model_list, metavar="NAMES",
                        help=f"{help_text}: comma-separated zoo names or 'all'; repeatable "
                             f"(default: {default})")


class DeprecatedAlias(argparse.Action):
    """An old option spelling that still works: stores into the new option's destination
    (appending where the new one appends) and prints a one-line notice on stderr."""

    def __init__(self, option_strings, dest, new_option: str, append: bool = False, **kwargs):
        self.new_option = new_option
        self.append = append
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: note: {option_string} is deprecated; use {self.new_option}",
              file=sys.stderr)
        if self.append:
            current = list(getattr(namespace, self.dest, None) or [])
            current.append(values)
            setattr(namespace, self.dest, current)
        else:
            setattr(namespace, self.dest, values)


def add_deprecated_alias(parser, old: str, new: str, dest: str, append: bool = False,
                         type=None, metavar=None) -> None:
    """Keep ``old`` working as ``new`` (hidden from --help, with a deprecation notice)."""
    parser.add_argument(old, dest=dest, action=DeprecatedAlias, new_option=new, append=append,
                        type=type, metavar=metavar, help=argparse.SUPPRESS)


DEFAULT_CATALOG = "a100"


def add_catalog_option(parser, default=DEFAULT_CATALOG, help_default: str = "a100") -> None:
    """``--catalog NAME|FILE.yaml``: the hardware an estimate is for."""
    parser.add_argument("--catalog", default=default,
                        help="hardware catalog: a shipped name (a100, a100-80gb, h100-sxm, "
                             "h200, epyc-7763) or a path to a YAML file such as one written "
                             f"by `profile-encoder calibrate` (default {help_default})")


def add_roofline_options(parser) -> None:
    """``--catalog`` and ``--estimate roofline|roofline-simulated`` of the per-module times."""
    add_catalog_option(parser)
    parser.add_argument("--estimate", choices=("roofline", "roofline-simulated"),
                        default="roofline",
                        help="roofline (default): deployed, low-bit ops at their bits and input "
                             "quantizers fused into the op producing their input; "
                             "roofline-simulated: quantizers as separate full-width float ops")


def compute_device(text: str) -> str:
    """``--device`` of commands that really compute: ``cpu`` or ``cuda[:N]``, present."""
    if not (text == "cpu" or text == "cuda" or text.startswith("cuda:")):
        raise argparse.ArgumentTypeError(f"{text!r}: expected cpu or cuda")
    if text.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError("no CUDA device is available")
    return text


def positive_float_list(text: str) -> list[float]:
    """``"1,10,30"`` -> ``[1.0, 10.0, 30.0]``, each a positive number."""
    values = [positive_float(part.strip()) for part in text.split(",") if part.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive numbers, got {text!r}")
    return values
