"""Multi-distillation (BiT): a chain of precisions, e.g. W32A32 -> W1A4 -> W1A2 -> W1A1.

Stage K trains ``OUT/stage-K-<precision>`` with stage K-1's student as its teacher (stage
1's teacher is ``--teacher``), each stage an ordinary run folder. ``OUT/chain.json`` records
the chain; running the same command again (or ``--resume``) skips the finished stages and
resumes the interrupted one from its newest checkpoint.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Dict, Optional

from ...constants import float_name
from ...quantization import Quantization
from ..errors import DataError
from ..fileio import read_json, write_json
from ..pretrain import checkpoint as ckpt
from ..pretrain.distillation import parse_chain
from ..pretrain.settings import (
    TRANSIENT,
    PretrainSettings,
    resume_settings,
    settings_for_resume,
    settings_record,
)

CHAIN_FILE = "chain.json"


def stage_folder(out: Path, index: int, precision: Quantization) -> Path:
    return out / f"stage-{index}-{precision.label}"


def chain_settings_for_resume(out: Path, given: Dict[str, Any]) -> Optional[PretrainSettings]:
    """The settings a chain in ``out`` was started with (None if ``out`` holds no chain)."""
    if not (Path(out) / CHAIN_FILE).is_file():
        return None
    stored = read_json(Path(out) / CHAIN_FILE, "distillation chain").get("settings")
    if not isinstance(stored, dict) or "model" not in stored:
        raise DataError(f"{Path(out) / CHAIN_FILE}: has no chain settings")
    return resume_settings(stored, given, out)


def _check_record(out: Path, record: Dict[str, Any]) -> None:
    path = out / CHAIN_FILE
    if not path.is_file():
        if os.environ.get("RANK", "0") == "0":
            out.mkdir(parents=True, exist_ok=True)
            write_json(path, record)
        return
    existing = read_json(path, "distillation chain")
    for key in ("teacher", "model", "chain"):
        if existing.get(key) != record[key]:
            raise DataError(f"{out}: holds a chain with {key} {existing.get(key)!r}, not "
                            f"{record[key]!r}; choose another --out")


def run_chain(settings: PretrainSettings):
    """Train every stage of ``settings.chain`` in turn; the last stage's result."""
    from ..pretrain.loop import PretrainResult, pretrain

    stages = parse_chain(settings.chain)
    first_teacher = ckpt.resolve_run(settings.teacher)   # stage 1 reuses it
    if first_teacher.precision != stages[0]:
        raise DataError(f"the chain starts at {stages[0].label} but the teacher "
                        f"{settings.teacher} is {first_teacher.precision.label}")
    out = Path(settings.out)
    record = {"teacher": str(Path(settings.teacher).resolve()), "model": settings.model,
              "chain": [p.label for p in stages],
              "settings": {**settings_record(settings), "resume": False}}
    _check_record(out, record)
    base = float_name(settings.model)
    teacher, result = settings.teacher, None
    for index, precision in enumerate(stages[1:], start=1):
        folder = stage_folder(out, index, precision)
        transient = {key: getattr(settings, key) for key in TRANSIENT}
        if (folder / ckpt.METADATA).is_file():
            metadata = ckpt.read_metadata(folder)
            if ckpt.is_finished(metadata):
                result = PretrainResult(folder, int(metadata["step"]),
                                        metadata.get("final_train_loss"),
                                        metadata.get("final_valid"),
                                        float(metadata.get("wall_seconds", 0.0)),
                                        ckpt.latest_checkpoint(folder), [])
                teacher = str(folder)
                continue
            stage = settings_for_resume(folder, transient)
        else:
            stage = dataclasses.replace(
                settings, out=str(folder), model=base, teacher=teacher, chain=None,
                resume=False, overrides={**settings.overrides,
                                         "weight_bits": precision.weight_bits,
                                         "activation_bits": precision.activation_bits})
        result = pretrain(stage, teacher=first_teacher if stage.teacher == settings.teacher
                          else None)
        teacher = str(folder)
    return result
