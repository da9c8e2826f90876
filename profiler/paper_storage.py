"""Storage of the ten zoo builds under Table 1's conventions, beside the paper's figures.

    python -m profiler.paper_storage

Storage = sum over parameters of numel x storage bits / 8, plus each module's
``extra_storage_bits`` (the binarized weights' scales), in MB of 1e6 bytes. Storage bits
come from the bits protocol (``profiler.bits``): 1 for binarized weights (and the binarized
Conformer's positional tables), the dtype's width otherwise. The vanilla rows are counted
with their float parameters at 16 bits (the paper's vanilla model is FP16; its BQ row only
fits with the float parts at 16 bits too), by building them in float16. Builds are on the
meta device, so this takes a few seconds.
"""
from __future__ import annotations

from typing import List

from torch import nn

from models.constants import is_binarized

from .bits import model_storage_bits
from .columns import relative_difference
from .conventions import MB, paper_float_bits
from .reference import table1
from .table import build_meta


def paper_build(name: str, **overrides) -> nn.Module:
    """``name`` on the meta device, at the float width Table 1 stores it with."""
    return build_meta(name, paper_float_bits(name), **overrides)


def storage_rows(**overrides) -> List[dict]:
    import models

    paper_table = table1()
    rows = []
    for name in models.names():
        model = paper_build(name, **overrides)
        megabytes = model_storage_bits(model) / 8 / MB
        paper = paper_table[name]["storage_mb"]
        rows.append({
            "model": name,
            "params": sum(p.numel() for p in model.parameters()),
            "float_bits": paper_float_bits(name),
            "storage_mb": megabytes,
            "paper_mb": paper,
            "difference_pct": 100.0 * relative_difference(megabytes, paper),
        })
    return rows


def main() -> int:
    default = storage_rows()
    projections = {row["model"]: row for row in storage_rows(binarize_projections=True)}
    print(f"{'model':<22}{'params':>12}{'float':>7}{'MB':>9}{'paper MB':>10}{'diff':>9}"
          f"{'MB, proj. binarized':>21}{'diff':>9}")
    for row in default:
        both = projections[row["model"]]
        binarized_projection = (f"{both['storage_mb']:>21.2f}{both['difference_pct']:>+8.2f}%"
                                if is_binarized(row["model"]) else "")
        print(f"{row['model']:<22}{row['params']:>12,}{row['float_bits']:>7}"
              f"{row['storage_mb']:>9.2f}{row['paper_mb']:>10.2f}{row['difference_pct']:>+8.2f}%"
              f"{binarized_projection}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
