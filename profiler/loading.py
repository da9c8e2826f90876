"""Turning a model argument into an nn.Module: a zoo name, ``file.py:factory`` or
``package.module:factory``."""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from torch import nn

from .errors import UsageError


def load_model(spec: str, **overrides) -> nn.Module:
    if ":" in spec:
        return _from_factory(spec, overrides)
    if spec.endswith(".py") or "/" in spec or Path(spec).is_file():
        raise UsageError(f"model {spec!r}: the factory is missing; give {spec}:FACTORY, the "
                         f"function in it that returns the nn.Module")
    import models

    try:
        return models.build(spec, **overrides)
    except ValueError as error:
        raise UsageError(str(error)) from error


def is_zoo_model(spec: str) -> bool:
    return ":" not in spec


def _from_factory(spec: str, overrides: dict) -> nn.Module:
    location, _, factory_name = spec.rpartition(":")
    if not location or not factory_name:
        raise UsageError(f"model {spec!r}: expected path/to/file.py:factory or package.module:factory")
    if location.endswith(".py") or "/" in location or Path(location).exists():
        path = Path(location)
        if not path.is_file():
            raise UsageError(f"model file {location} does not exist")
        module_name = f"_profiled_{path.stem}"
        spec_obj = importlib.util.spec_from_file_location(module_name, path)
        if spec_obj is None or spec_obj.loader is None:
            raise UsageError(f"cannot import {location} as a Python file")
        module = importlib.util.module_from_spec(spec_obj)
        sys.modules[module_name] = module
        sys.path.insert(0, str(path.resolve().parent))
        try:
            spec_obj.loader.exec_module(module)
        except Exception as error:
            raise UsageError(f"importing {location} failed: {type(error).__name__}: {error}") from error
        finally:
            sys.path.pop(0)
    else:
        try:
            module = importlib.import_module(location)
        except Exception as error:
            raise UsageError(f"cannot import module {location}: {type(error).__name__}: {error}") from error
    factory = getattr(module, factory_name, None)
    if factory is None:
        raise UsageError(f"{location} has no {factory_name!r}")
    if not callable(factory):
        raise UsageError(f"{location}:{factory_name} is not callable")
    try:
        model = factory(**overrides)
    except Exception as error:
        raise UsageError(f"{location}:{factory_name}() raised {type(error).__name__}: {error}") from error
    if not isinstance(model, nn.Module):
        raise UsageError(f"{location}:{factory_name}() returned {type(model).__name__}, not an nn.Module")
    return model
