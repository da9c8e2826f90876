"""How an option of the trainer is declared: a settings dataclass field made with :func:`option`.

Every settings dataclass (pre-training's and SUPERB evaluation's, the study's) declares its
options with :func:`option`: the default, help text, bounds and preset values live in the
field. The command line (``profile-encoder train``/``superb``/``study``), the adapter's
requests (``profiler.adapters.TrainRequest``/``EvalRequest``) and :func:`check_bounds` are
all derived from these fields, so a new option is one new field.

Imports stay light (no torch): the command line builds its parser from the settings.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import typing
from typing import Any, Dict, Optional, Sequence

from profiler.option_values import device_help

from .errors import DataError

POSITIVE = "positive"
NON_NEGATIVE = "non-negative"
# Kinds of value beyond the field's type, read by the command line's shared value types
# (profiler.commands.arguments): a device this machine has; a comma list of names,
# repeatable on the command line and joined back into the field's one string.
DEVICE = "device"
COMMA_LIST = "comma list"


def option(default: Any = dataclasses.MISSING, help: str = "", *, factory: Any = None,
           shown: Optional[str] = None, presets: Optional[Dict[str, Any]] = None,
           bound: Optional[str] = None, kind: Optional[str] = None,
           choices: Optional[Sequence] = None,
           metavar: Optional[str] = None, flag: Optional[str] = None,
           deprecated: Sequence[str] = (), required: bool = False, one_of: Optional[str] = None,
           transient: bool = False, command_line: bool = True) -> Any:
    """A settings field with everything the command line and the checks need.

    ``help`` says what the option does; :func:`help_text` adds its default (``shown``
    where the value alone would not say it) and its ``presets`` values. ``bound`` is
    :data:`POSITIVE` or :data:`NON_NEGATIVE`; ``kind`` is :data:`DEVICE` or
    :data:`COMMA_LIST` (see :func:`device_option`); ``flag`` replaces the ``--name`` spelling
    (a boolean that defaults to on is switched off by its flag, e.g. ``--quiet``);
    ``deprecated`` lists old spellings that still work; ``required`` options must be
    given on the command line; of the options sharing a ``one_of`` group exactly one is
    given. ``transient`` options may differ between a run and its resumption and are not
    part of its recorded settings; ``command_line=False`` keeps an option off the CLI.
    """
    metadata = {"help": help, "shown": shown, "presets": dict(presets or {}), "bound": bound,
                "kind": kind,
                "choices": tuple(choices) if choices else None, "metavar": metavar,
                "flag": flag, "deprecated": tuple(deprecated), "required": required,
                "one_of": one_of, "transient": transient, "command_line": command_line}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def device_option(shown: str, **kwargs: Any) -> Any:
    """The ``device`` option of a settings dataclass: ``cpu``, ``cuda`` or ``cuda:N``
    (checked by :func:`profiler.option_values.check_device`), ``None`` picks by itself as
    ``shown`` says."""
    return option(None, device_help(), kind=DEVICE, shown=shown, **kwargs)


@functools.lru_cache(maxsize=None)
def _type_hints(settings: type) -> Dict[str, Any]:
    return typing.get_type_hints(settings)


def value_type(settings: type, name: str) -> type:
    """The type of an option's values (``Optional[int]`` -> ``int``, ``Dict[...]`` -> ``dict``)."""
    hint = _type_hints(settings)[name]
    arguments = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        hint, origin = arguments[0], typing.get_origin(arguments[0])
    return origin or hint


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if value is None or value == {}:
        return "none"
    return str(value)


def option_flag(field: dataclasses.Field) -> str:
    """The command-line spelling of a settings field: its own flag, else ``batch_size`` ->
    ``--batch-size``. The parsers (profiler.commands.settings_arguments) and the study's
    command lines (study.plan.command_words) both spell options with it."""
    return field.metadata["flag"] or "--" + field.name.replace("_", "-")


def help_text(field: dataclasses.Field) -> str:
    """The option's help with its default and preset values, e.g. ``optimizer steps
    (default: 250000; iteration 2: 400000; --tiny: 250)``."""
    meta = field.metadata
    parts = []
    has_default = (field.default is not dataclasses.MISSING
                   or field.default_factory is not dataclasses.MISSING)
    if has_default and not meta["one_of"]:   # one of a group is given: no default
        default = field.default_factory() if field.default is dataclasses.MISSING else field.default
        parts.append(f"default: {meta['shown'] or _shown(default)}")
    parts += [f"{name}: {_shown(value)}" for name, value in meta["presets"].items()]
    return f"{meta['help']} ({'; '.join(parts)})" if parts else meta["help"]


def check_bounds(settings: Any) -> None:
    """:class:`DataError` (one line) for the first option outside its ``bound``."""
    for field in dataclasses.fields(settings):
        bound, value = field.metadata.get("bound"), getattr(settings, field.name)
        if bound is None or value is None:
            continue
        positive = bound == POSITIVE
        if value_type(type(settings), field.name) is int:
            fits = isinstance(value, int) and not isinstance(value, bool) and value >= int(positive)
            wanted = "a positive integer" if positive else "a whole number >= 0"
        else:
            fits = (isinstance(value, (int, float)) and math.isfinite(value)
                    and (value > 0 if positive else value >= 0))
            wanted = "a positive number" if positive else "a number >= 0"
        if not fits:
            raise DataError(f"{field.name} must be {wanted}, got {value!r}")
