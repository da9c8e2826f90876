"""``profile-encoder``: what an audio encoder costs, before and after binarization."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Optional, Sequence

from .commands import calibrate, check, measure, profile_model, report, sweep, table
from .errors import ProfileError, UsageError
from .training_commands import DATA_COMMAND, TRAINING_COMMANDS


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (and exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")

    def _get_values(self, action, arg_strings):
        # An empty text value (a path, a name) is an unset shell variable (`--out "$RUN"`),
        # never a choice: taken as "not given" it wrote a sweep or a report into the current
        # folder. Typed values (numbers, lists, choices) name an empty value themselves.
        if action.type in (None, str) and action.choices is None \
                and not isinstance(action, argparse._SubParsersAction) \
                and any(not text.strip() for text in arg_strings):
            name = "/".join(action.option_strings) or action.metavar or action.dest
            self.error(f"argument {name}: an empty value")
        return super()._get_values(action, arg_strings)


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The whole CLI. The training commands' own parsers (train, superb, data) are mounted
    only when ``command`` names them: their options live in the ``models`` package, and
    importing that for any other command would shadow a user's own package named ``models``
    (see :mod:`profiler.commands.loading`)."""
    parser = _Parser(
        prog="profile-encoder",
        description="Storage, FLOPs, bit operations (BOPs) and estimated runtime of audio "
                    "encoders, full precision and binarized.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in (table, profile_model, report, check, measure, calibrate, sweep):
        module.add_parser(sub)
    for name, summary in TRAINING_COMMANDS.items():
        if name != command:
            sub.add_parser(name, help=f"{summary} (see profile-encoder {name} --help)")
        elif name == DATA_COMMAND:
            from models.trainer.cli import add_data_parser, run_data_command

            add_data_parser(sub, DATA_COMMAND).set_defaults(run=run_data_command,
                                                            error_prefix="profile-encoder: ")
        else:
            # Here, not at the top: these import the ``models`` package (see above). All
            # three take about 3 ms more to import than the one asked for.
            from .commands import study, superb, train

            {"train": train, "superb": superb, "study": study}[name].add_parser(sub)
    return parser


def command_of(argv: Sequence[str]) -> Optional[str]:
    """The subcommand ``argv`` asks for: its first word that is not an option (the top
    level has no option that takes a value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def _is_data_error(error: Exception) -> bool:
    """Whether ``error`` is the trainer's bad-input error (``DataError``, and its subclass
    ``CheckpointError``): one line and exit status 2, as a UsageError. Looked up where it
    was raised from, so that commands which never import the trainer do not load it."""
    errors = sys.modules.get("models.trainer.errors")
    return errors is not None and isinstance(error, errors.DataError)


def main(argv: Optional[Sequence[str]] = None) -> int:
    own_command_line = argv is None   # the process's own: it ends after this call
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(command_of(argv)).parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except UsageError as error:
        return _fail(str(error), 2)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return 0
    except ProfileError as error:
        return _fail(str(error), 2)
    except Exception as error:
        if _is_data_error(error):
            return _fail(str(error), 2)
        if os.environ.get("PROFILE_ENCODER_TRACEBACK"):
            raise
        return _fail(f"internal error: {type(error).__name__}: {error} "
                     f"(set PROFILE_ENCODER_TRACEBACK=1 for the traceback)", 1)
    finally:
        if own_command_line:
            # A Ctrl-C from here on could only interrupt the interpreter's teardown
            # (weakref callbacks freeing tensors) and print tracebacks from inside it.
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _fail(message: str, status: int) -> int:
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    print(f"profile-encoder: error: {first}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
