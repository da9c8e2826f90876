"""Golden op counts: the zoo's raw counts, committed, and compared in CI.

The file holds, per zoo model (FP32 build, one 10 s utterance, eval mode), the totals and
the subtree totals of each top-level module. Any change to a formula, a convention or a
model that moves a count shows up as a readable diff.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Optional

from models.constants import SAMPLE_RATE

from .errors import UsageError
from .files import REPORTS
from .module_names import module_depth
from .reference import PAPER_SECONDS

GOLDEN_QUANTITIES = ("params", "storage_bytes", "buffer_bytes", "macs", "macs_nonq",
                     "macs_bq", "flops", "elementwise_flops", "bop_nonq", "bop_q", "bop_bq",
                     "effective_macs", "foldable_macs", "foldable_flops")
MODULE_QUANTITIES = ("params", "macs", "flops", "bop_nonq", "bop_bq")
DEFAULT_PATH = REPORTS / "golden" / "op_counts.json"
SECONDS = PAPER_SECONDS         # the golden counts are of the paper's 10 s utterance


def compute(names: Iterable[str], seconds: float = SECONDS, progress: bool = False) -> dict:
    from .conventions import get_convention
    from .option_values import DEFAULT_CONVENTION
    from .table import profile_zoo_model

    names = list(names)
    iterator = names
    if progress:
        from tqdm import tqdm

        iterator = tqdm(names, desc="counting", unit="model", leave=False)
    convention = get_convention(DEFAULT_CONVENTION)
    models = {}
    for name in iterator:
        prof = profile_zoo_model(name, seconds, convention, use_cache=False).profile
        own = prof.modules[""]
        top = {"(root)": {k: _plain(own[k]) for k in MODULE_QUANTITIES}}  # the model's own
        for module in prof.modules:
            if module_depth(module) == 1:
                sub = prof.subtree(module)
                top[module] = {k: _plain(sub[k]) for k in MODULE_QUANTITIES}
        models[name] = {"totals": {k: _plain(prof.totals[k]) for k in GOLDEN_QUANTITIES},
                        "modules": top}
    return {"about": "Raw counts of the zoo's FP32 builds on one utterance (batch 1, eval); "
                     "regenerate with `profile-encoder check --write` and say in the commit "
                     "message why each number moved.",
            "seconds": seconds, "sample_rate": SAMPLE_RATE, "models": models}


def _plain(value):
    return int(value) if float(value).is_integer() else float(value)


def load(path: Path) -> dict:
    if path.is_dir():
        raise UsageError(f"golden file {path} is a folder, not a JSON file")
    if not path.is_file():
        raise UsageError(f"golden file {path} does not exist (write one with --write)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"golden file {path} is not valid JSON: {error}") from None
    if (not isinstance(data, dict) or not isinstance(data.get("models"), dict)
            or "seconds" not in data):
        raise UsageError(f"golden file {path} lacks 'models' and 'seconds'")
    problem = _malformed(data)
    if problem:
        raise UsageError(f"golden file {path}: {problem}")
    return data


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _malformed(data: dict) -> Optional[str]:
    """The first field that is not what :func:`compute` writes, said as a path."""
    def counts(where: str, block) -> Optional[str]:
        if not isinstance(block, dict):
            return f"{where} is {block!r}, expected a mapping of counts"
        for key, value in block.items():
            if not _is_number(value):
                return f"{where}.{key} is {value!r}, expected a number"
        return None

    if not _is_number(data["seconds"]) or data["seconds"] <= 0:
        return f"seconds is {data['seconds']!r}, expected a positive number"
    for name, entry in data["models"].items():
        if not isinstance(entry, dict) or not {"totals", "modules"} <= set(entry):
            return f"models.{name} is {entry!r}, expected 'totals' and 'modules'"
        problem = counts(f"models.{name}.totals", entry.get("totals", {}))
        modules = entry.get("modules", {})
        if problem is None and not isinstance(modules, dict):
            problem = f"models.{name}.modules is {modules!r}, expected a mapping of modules"
        for module, block in (modules.items() if problem is None else ()):
            problem = problem or counts(f"models.{name}.modules.{module}", block)
        if problem:
            return problem
    return None


def diff(golden: dict, current: dict, tolerance: float = 0.0) -> list[str]:
    """Readable lines for every count that moved by more than ``tolerance`` (relative)."""
    lines = []
    for name in sorted(set(golden["models"]) | set(current["models"])):
        old, new = golden["models"].get(name), current["models"].get(name)
        if old is None:
            lines.append(f"{name}: not in the golden file")
            continue
        if new is None:
            lines.append(f"{name}: in the golden file but not counted now")
            continue
        lines += _diff_block(f"{name}", old.get("totals", {}), new["totals"], tolerance)
        modules = sorted(set(old.get("modules", {})) | set(new["modules"]))
        for module in modules:
            a, b = old.get("modules", {}).get(module), new["modules"].get(module)
            if a is None or b is None:
                lines.append(f"{name}.{module}: module {'added' if a is None else 'removed'}")
                continue
            lines += _diff_block(f"{name}.{module}", a, b, tolerance)
    return lines


def _diff_block(where: str, old: dict, new: dict, tolerance: float) -> list[str]:
    lines = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if a is None or b is None:
            lines.append(f"{where} {key}: {a!r} -> {b!r}")
            continue
        rel = abs(b - a) / abs(a) if a else float("inf")
        if rel > tolerance:
            change = f"{(b - a) / a:+.4%}" if a else "new"
            lines.append(f"{where} {key}: {a:,} -> {b:,} ({change})")
    return lines
