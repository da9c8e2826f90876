"""Command-line options derived from the trainer's settings (``train`` and ``superb``).

Each field of ``PretrainSettings``/``SuperbSettings`` (:mod:`models.trainer.pretrain.settings`,
:mod:`models.trainer.superb.settings`) becomes one option: ``batch_size`` is
``--batch-size``, its help text states the default, and the argument type follows the
field's type, bound and kind, through the value types every command uses
(:mod:`.arguments`). An option the user does not give stays ``None`` (booleans too), so
the backend can tell "not given" from a value. A comma-list field is repeatable and its
lists are joined back into the field's one comma-separated string.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Sequence

from models.trainer.options import (
    COMMA_LIST,
    DEVICE,
    NON_NEGATIVE,
    POSITIVE,
    help_text,
    option_flag,
    value_type,
)

from ..option_values import non_negative_int, positive_int
from .arguments import (
    add_deprecated_alias,
    add_set_option,
    comma_list,
    device_type,
    parse_set,
    positive_float,
)

_TYPES = {(int, POSITIVE): positive_int, (int, NON_NEGATIVE): non_negative_int,
          (float, POSITIVE): positive_float}


def add_settings_arguments(parser, settings: type,
                           fields: Optional[Sequence[str]] = None) -> None:
    """One option per command-line field of ``settings`` (or of ``fields`` alone, for a
    script that passes some of them on); model overrides are ``--set``."""
    groups: Dict[str, Any] = {}
    for field in dataclasses.fields(settings):
        meta = field.metadata
        if not meta["command_line"] or (fields is not None and field.name not in fields):
            continue
        kind = value_type(settings, field.name)
        option = option_flag(field)
        if kind is dict:
            add_set_option(parser, help_text(field))
            for old in meta["deprecated"]:
                add_deprecated_alias(parser, old, "--set", dest="set", append=True,
                                     metavar="KEY=VALUE")
            continue
        target = parser
        if meta["one_of"]:
            if meta["one_of"] not in groups:
                groups[meta["one_of"]] = parser.add_mutually_exclusive_group(required=True)
            target = groups[meta["one_of"]]
        if kind is bool:
            # A flag switches the default: --tiny turns on, --quiet turns progress off.
            target.add_argument(option, dest=field.name, action="store_const",
                                const=not field.default, default=None, help=help_text(field))
            continue
        gathers = meta["kind"] == COMMA_LIST
        argument_type = _argument_type(field, kind)
        target.add_argument(option, dest=field.name, type=argument_type, default=None,
                            action="extend" if gathers else "store",
                            choices=meta["choices"], metavar=meta["metavar"],
                            required=meta["required"], help=help_text(field))
        for old in meta["deprecated"]:
            add_deprecated_alias(parser, old, option, dest=field.name, type=argument_type,
                                 append=gathers, metavar=meta["metavar"])


def _argument_type(field, kind: type):
    """The parser of one field's value: by its kind, else by its type and bound."""
    meta = field.metadata
    if meta["kind"] == DEVICE:
        return device_type()
    if meta["kind"] == COMMA_LIST:
        return comma_list(kind, field.name)
    return _TYPES.get((kind, meta["bound"]), kind)


def settings_from_arguments(args, settings: type) -> Dict[str, Any]:
    """The values of ``settings``' fields in parsed ``args`` (``None`` where not given)."""
    values = {}
    for field in dataclasses.fields(settings):
        if value_type(settings, field.name) is dict:
            values[field.name] = parse_set(getattr(args, "set", None)) or None
        elif field.metadata["kind"] == COMMA_LIST and getattr(args, field.name, None):
            values[field.name] = ",".join(getattr(args, field.name))
        else:
            values[field.name] = getattr(args, field.name, None)
    return values
