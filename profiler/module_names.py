"""Module names as a profile keys its rows: "" is the model, "encoder.layers.0" a module two
levels below it. Pure string rules, so that the estimator, the display and the golden
counts fold and group rows as ``Profile`` does, without importing torch."""
from __future__ import annotations


def module_depth(name: str) -> int:
    """Depth of a module name: 0 for the model itself (""), 1 for its children..."""
    return 0 if name == "" else name.count(".") + 1


def ancestor_at(name: str, depth: int) -> str:
    """The module at ``depth`` that ``name`` lies under (``name`` itself if no deeper)."""
    return name if module_depth(name) <= depth else ".".join(name.split(".")[:depth])


def is_within(name: str, root: str) -> bool:
    """Whether module ``name`` is ``root`` or lies below it (everything lies within "")."""
    return root == "" or name == root or name.startswith(root + ".")
