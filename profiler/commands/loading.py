"""Turning a model argument into an nn.Module: a zoo name, ``file.py:factory``,
``package.module:factory`` or a transformers audio model from its config, ``hf:NAME`` or
``hf:path/config.json`` (:mod:`models.huggingface`, offline).

The zoo (the ``models`` package) is imported only for a zoo name: a user's project may
have its own top-level ``models`` package, and once ours is imported the user's can no
longer be. While a user's file is imported, its factory called and the model profiled
(:func:`user_folder_on_path`), the file's folder comes first on ``sys.path``, so the file
and its forward can import the modules beside it.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Iterator, Optional

from torch import nn

from ..errors import UsageError

HF_PREFIX = "hf:"   # models.huggingface.PREFIX; not imported: see above on the zoo


def is_zoo_model(spec: str) -> bool:
    return ":" not in spec


def is_hf_model(spec: str) -> bool:
    return spec.startswith(HF_PREFIX)


def load_hf_model(spec: str, overrides: dict, device: str = "cpu"):
    """``models.huggingface.HfModel`` of ``hf:NAME`` or ``hf:path/config.json``, built
    offline from the config (``overrides``: config fields); bad input is a UsageError."""
    from models import huggingface

    try:
        return huggingface.build(spec, overrides, device=device)
    except ValueError as error:
        raise UsageError(str(error)) from error


def load_model(spec: str, **overrides) -> nn.Module:
    if is_hf_model(spec):
        device = overrides.pop("device", "cpu")
        return load_hf_model(spec, overrides, device).module
    if not is_zoo_model(spec):
        return _from_factory(spec, overrides)
    if spec.endswith(".py") or "/" in spec:
        raise UsageError(f"model {spec!r}: the factory is missing; give {spec}:FACTORY, the "
                         "function in it that returns the nn.Module")
    import models

    try:
        return models.build(spec, **overrides)
    except ValueError as error:
        raise UsageError(str(error)) from error


@contextlib.contextmanager
def user_folder_on_path(spec: str) -> Iterator[None]:
    """For ``path/to/file.py:factory``: the file's folder first on ``sys.path`` inside the
    block (nothing changes for zoo names and module specs)."""
    folder = None if is_hf_model(spec) else _user_folder(spec)
    if folder is None:
        yield
        return
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)


def _names_a_file(location: str) -> bool:
    return location.endswith(".py") or "/" in location or Path(location).exists()


def _user_folder(spec: str) -> Optional[str]:
    location = spec.rpartition(":")[0]
    if not location or not _names_a_file(location):
        return None
    return str(Path(location).resolve().parent)


def _from_factory(spec: str, overrides: dict) -> nn.Module:
    location, _, factory_name = spec.rpartition(":")
    if not location or not factory_name:
        raise UsageError(f"model {spec!r}: expected path/to/file.py:factory or "
                         "package.module:factory")
    with user_folder_on_path(spec):
        module = _import_file(location) if _names_a_file(location) else _import_module(location)
        factory = getattr(module, factory_name, None)
        if factory is None:
            raise UsageError(f"{location} has no {factory_name!r}")
        if not callable(factory):
            raise UsageError(f"{location}:{factory_name} is not callable")
        try:
            model = factory(**overrides)
        except Exception as error:
            _raise_on_shadowing(error, f"{location}:{factory_name}()", location)
            raise UsageError(f"{location}:{factory_name}() raised {type(error).__name__}: "
                             f"{error}") from error
    if not isinstance(model, nn.Module):
        raise UsageError(f"{location}:{factory_name}() returned {type(model).__name__}, "
                         "not an nn.Module")
    return model


def _import_file(location: str):
    path = Path(location)
    if not path.is_file():
        raise UsageError(f"model file {location} does not exist")
    module_name = f"_profiled_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {location} as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        _raise_on_shadowing(error, location, location)
        raise UsageError(f"importing {location} failed: {type(error).__name__}: "
                         f"{error}") from error
    return module


def _import_module(location: str):
    try:
        return importlib.import_module(location)
    except Exception as error:
        raise UsageError(f"cannot import module {location}: {type(error).__name__}: "
                         f"{error}") from error


def _raise_on_shadowing(error: Exception, what: str, location: str) -> None:
    """A failed import of a top-level name that the user's folder provides but that this
    process already took for another module (``profiler`` is always ours here; ``models``
    is once a zoo model was built): say what clashes and what to do."""
    if not isinstance(error, ImportError) or not error.name:
        return
    top = error.name.partition(".")[0]
    taken = sys.modules.get(top)
    folder = Path(location).resolve().parent
    mine = folder / top
    if taken is None or not (mine.is_dir() or mine.with_suffix(".py").is_file()):
        return
    paths = [getattr(taken, "__file__", None), *getattr(taken, "__path__", [])]
    origin = Path(next((p for p in paths if p), ".")).resolve()
    if origin.is_relative_to(folder):
        return
    raise UsageError(
        f"{what}: your {top!r} ({mine}) is shadowed by the {top!r} already imported in "
        f"this process ({origin.parent if origin.is_file() else origin}): rename yours "
        f"(e.g. my_{top}) and the imports of it") from error
