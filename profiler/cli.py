"""``profile-encoder``: what an audio encoder costs, before and after binarization."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Optional, Sequence

from .errors import UsageError

class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (and exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="profile-encoder",
        description="Storage, FLOPs, bit operations (BOPs) and estimated runtime of audio "
                    "encoders, full precision and binarized.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    from .commands import check, measure, profile_model, report, superb, table, train

    table.add_parser(sub)
    profile_model.add_parser(sub)
    report.add_parser(sub)
    check.add_parser(sub)
    measure.add_parser(sub)
    train.add_parser(sub)
    superb.add_parser(sub)
    from models.trainer.cli import add_data_parser, run_data_command

    add_data_parser(sub).set_defaults(run=run_data_command,
                                      error_prefix="profile-encoder: ")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except UsageError as error:
        return _fail(str(error), 2)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return 0
    except Exception as error:
        from .analyzer import ProfileError

        if isinstance(error, ProfileError):
            return _fail(str(error), 2)
        if os.environ.get("PROFILE_ENCODER_TRACEBACK"):
            raise
        return _fail(f"internal error: {type(error).__name__}: {error} "
                     f"(set PROFILE_ENCODER_TRACEBACK=1 for the traceback)", 1)
    finally:
        if argv is None:  # the process's own command line: the process ends after this
            # A Ctrl-C from here on could only interrupt the interpreter's teardown
            # (weakref callbacks freeing tensors) and print tracebacks from inside it.
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _fail(message: str, status: int) -> int:
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    print(f"profile-encoder: error: {first}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
