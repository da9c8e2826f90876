"""The result of a profile: per-module rows and totals, as plain mappings.

Quantities (raw counts, never scaled to G or M):

``params``             parameters owned by the module (shared ones counted once)
``storage_bytes``      parameter bits / 8 under the bits protocol, plus declared extras
``buffer_bytes``       persistent buffers (running statistics, tables); not in storage
``macs``               multiply-accumulates of every precision, as executed
``macs_nonq``/``macs_q``/``macs_bq``  the MACs by precision class: both operands float
                       (>= 16 bits), both binary (1 bit), anything else
``mac_flops``          2 x macs_nonq
``elementwise_flops``  softmax, norms, activations, adds... (see profiler.formulas)
``flops``              mac_flops + elementwise_flops: the floating-point work
``bop_nonq``/``bop_q``/``bop_bq``  bit operations, MACs x bits x bits per op (Bayesian
                       Bits), by the same precision classes; ``bops`` their sum
``effective_*``        the same with a sparse attention's declared pattern cost in place of
                       the activation x activation MACs it executed
``foldable_macs``/``foldable_flops``  work on constants only (weight binarization...),
                       which a deployed model precomputes; not in the totals above
``bytes_moved``        bytes read and written by arithmetic ops (an estimate for rooflines)

Training (``profile(..., mode="train")``) adds, per module and in the totals:

``trainable_params``   parameters that received a gradient (those AdamW updates: with
                       ``requires_grad``, and used by the forward)
``backward_macs``, ``backward_mac_flops``, ``backward_elementwise_flops``,
``backward_flops``, ``backward_bop_nonq``/``_q``/``_bq``, ``backward_bytes_moved``
                       the backward's ops, as above; always at the tensors' dtypes (a
                       binarized layer's gradients are float: straight-through estimator)
``optimizer_flops``    AdamW's update, 14 FLOPs per trainable parameter (train_step.py)
``train_macs``         macs + foldable_macs + backward_macs
``train_flops``        flops + the foldable work (2 x foldable_macs + foldable_flops: the
                       weights change every step) + backward_flops + optimizer_flops: one
                       training step
``train_bops``         bops + the backward's BOPs

Memory (both modes) is apart, in :attr:`Profile.memory` (peaks do not add up over
modules; see :mod:`profiler.memory` for its keys).

Per-module rows count only the ops that ran directly in the module (not its children),
so the rows sum to the totals; ``to_dataframe(depth=N)`` folds deeper rows into their
ancestor at depth N, which keeps that property.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping, Optional

from torch import nn

from . import bits as bitspec
from . import memory as memory_summary
from .bits import OperandPair
from .module_names import is_within, module_depth
from .train_step import ADAMW_FLOPS_PER_PARAMETER

ROOT_LABEL = "(model)"  # the model's own row where a table needs a non-empty name
QUANTITIES = (
    "params", "storage_bytes", "buffer_bytes", "macs", "macs_nonq", "macs_q", "macs_bq",
    "mac_flops", "elementwise_flops", "flops", "bop_nonq", "bop_q", "bop_bq", "bops",
    "effective_macs", "effective_flops", "effective_bop_nonq", "effective_bop_q",
    "effective_bop_bq", "foldable_macs", "foldable_flops", "bytes_moved",
)
_BACKWARD = ("macs", "mac_flops", "elementwise_flops", "flops", "bop_nonq", "bop_q", "bop_bq",
             "bytes_moved")
TRAIN_QUANTITIES = ("trainable_params", *(f"backward_{key}" for key in _BACKWARD),
                    "optimizer_flops", "train_macs", "train_flops", "train_bops")


@dataclass
class ModuleTally:
    calls: int = 0
    macs: Counter = field(default_factory=Counter)  # (kind, bits, bits) -> MACs: OperandPair
    aa_macs: Counter = field(default_factory=Counter)  # activation x activation part
    declared_effective_aa: Optional[int] = None
    elementwise_flops: int = 0
    foldable_macs: int = 0
    foldable_flops: int = 0
    bytes_moved: int = 0
    ops: Counter = field(default_factory=Counter)


@dataclass
class OperatorTally:
    calls: int = 0
    macs: int = 0
    elementwise_flops: int = 0


@dataclass
class TrainingCounts:
    """The backward's tallies, per module and per operator, and the names of the
    parameters that received a gradient (the ones AdamW updates)."""
    tallies: Mapping[str, ModuleTally]
    operators: Mapping[str, OperatorTally]
    updated: frozenset = frozenset()


def _training_quantities(row: dict, backward: ModuleTally, trainable_params: int) -> dict:
    back = _quantities(backward, 0, 0, 0)
    # The weights change every step: work on them alone (binarizing the latent weights),
    # which inference leaves out as precomputable, is done every training step; the
    # backward's share is in backward_*, the forward's in train_*.
    back["macs"] += back["foldable_macs"]
    back["mac_flops"] += 2 * back["foldable_macs"]
    back["elementwise_flops"] += back["foldable_flops"]
    back["flops"] += 2 * back["foldable_macs"] + back["foldable_flops"]
    train = {"trainable_params": trainable_params}
    train.update({f"backward_{key}": back[key] for key in _BACKWARD})
    train["optimizer_flops"] = ADAMW_FLOPS_PER_PARAMETER * trainable_params
    train["train_macs"] = row["macs"] + row["foldable_macs"] + back["macs"]
    train["train_flops"] = (row["flops"] + 2 * row["foldable_macs"] + row["foldable_flops"]
                            + back["flops"] + train["optimizer_flops"])
    train["train_bops"] = row["bops"] + back["bop_nonq"] + back["bop_q"] + back["bop_bq"]
    return train


def _quantities(tally: ModuleTally, params: int, storage_bits: int, buffer_bytes: int) -> dict:
    row = dict.fromkeys(QUANTITIES, 0)
    row["params"] = params
    row["storage_bytes"] = _bytes(storage_bits)
    row["buffer_bytes"] = buffer_bytes
    row["elementwise_flops"] = tally.elementwise_flops
    row["foldable_macs"] = tally.foldable_macs
    row["foldable_flops"] = tally.foldable_flops
    row["bytes_moved"] = tally.bytes_moved

    effective = Counter(tally.macs)
    aa_total = sum(tally.aa_macs.values())
    if tally.declared_effective_aa is not None:
        for key, count in tally.aa_macs.items():
            share = count * tally.declared_effective_aa / aa_total if aa_total else 0
            effective[key] += share - count

    for prefix, macs in (("", tally.macs), ("effective_", effective)):
        total_macs = 0.0
        classes = Counter()
        for key, count in macs.items():
            pair = OperandPair(*key)
            cls = pair.precision_class
            classes["macs_" + cls] += count
            classes["bop_" + cls] += count * pair.bops_per_mac
            total_macs += count
        nonq_flops = 2 * classes["macs_nonq"]
        row[prefix + "macs"] = _int(total_macs)
        row[prefix + "flops"] = _int(nonq_flops + tally.elementwise_flops)
        for cls in ("nonq", "q", "bq"):
            row[prefix + "bop_" + cls] = _int(classes["bop_" + cls])
        if not prefix:
            for cls in ("nonq", "q", "bq"):
                row["macs_" + cls] = _int(classes["macs_" + cls])
            row["mac_flops"] = _int(nonq_flops)
            row["bops"] = _int(classes["bop_nonq"] + classes["bop_q"] + classes["bop_bq"])
    return row


def _qualified(module: str, name: str) -> str:
    return f"{module}.{name}" if module else name


def _operator_rows(operators: Mapping[str, OperatorTally]) -> dict:
    return {name: {"calls": t.calls, "macs": t.macs, "elementwise_flops": t.elementwise_flops}
            for name, t in sorted(operators.items())}


def _int(x) -> int:
    return int(round(x))


def _bytes(bits: int):
    return bits // 8 if bits % 8 == 0 else bits / 8


class Profile:
    """Counts of one forward pass. Build with :func:`profiler.profile`."""

    def __init__(self, rows: dict, types: dict, operators: dict, unsupported: Mapping[str, int],
                 info: dict, module_pairs: Mapping[str, Mapping[OperandPair, int]],
                 memory: Optional[dict] = None,
                 backward_pairs: Optional[Mapping[str, Mapping[OperandPair, int]]] = None):
        self._rows = rows
        self._memory = memory or {}
        # The backward's MACs by operand pair (train mode), per module; None at inference.
        self._backward_pairs = backward_pairs
        self._keys = QUANTITIES + (TRAIN_QUANTITIES if backward_pairs is not None else ())
        # A module's own MACs by operand pair; labelled ("W1A1") only on output.
        self._module_pairs = module_pairs
        self._types = types
        by_pair: Counter = Counter()
        for pairs in module_pairs.values():
            by_pair.update(pairs)
        self._by_pair = dict(sorted(by_pair.items(),
                                    key=lambda kv: (-kv[0].bops_per_mac, kv[0])))
        self._operators = operators
        self._unsupported = dict(unsupported)
        self.info = MappingProxyType(info)
        totals = dict.fromkeys(self._keys, 0)
        for row in rows.values():
            for key in self._keys:
                totals[key] += row[key]
        self._totals = totals

    @classmethod
    def from_tallies(cls, model: nn.Module, tallies: Mapping[str, ModuleTally],
                     operators: Mapping[str, OperatorTally], unsupported: Mapping[str, int],
                     *, device: str, inputs: list, memory=None,
                     training: Optional[TrainingCounts] = None) -> "Profile":
        rows, types, module_pairs = {}, {}, {}
        backward_pairs = {} if training is not None else None
        seen: set[int] = set()
        gradient_bytes, largest, trainable_tensors = 0, 0, 0
        for name, module in model.named_modules():
            params, storage_bits, trainable = 0, bitspec.extra_storage_bits(module), 0
            for pname, p in bitspec.unseen_parameters(module, seen):
                params += p.numel()
                storage_bits += p.numel() * bitspec.parameter_storage_bits(module, pname, p)
                if training is not None and _qualified(name, pname) in training.updated:
                    trainable += p.numel()
                    size = p.numel() * p.element_size()
                    gradient_bytes, largest = gradient_bytes + size, max(largest, size)
                    trainable_tensors += 1
            buffer_bytes = 0
            persistent = set(module._buffers) - set(
                getattr(module, "_non_persistent_buffers_set", ()))
            for bname, b in module.named_buffers(recurse=False):
                if bname in persistent and b is not None and id(b) not in seen:
                    seen.add(id(b))
                    buffer_bytes += b.numel() * bitspec.dtype_bits(b.dtype) // 8
            tally = tallies.get(name, ModuleTally())
            rows[name] = _quantities(tally, params, storage_bits, buffer_bytes)
            rows[name]["calls"] = tally.calls
            types[name] = type(module).__name__
            module_pairs[name] = {OperandPair(*k): v for k, v in tally.macs.items()}
            if training is not None:
                backward = training.tallies.get(name, ModuleTally())
                rows[name].update(_training_quantities(rows[name], backward, trainable))
                backward_pairs[name] = {OperandPair(*k): v for k, v in backward.macs.items()}
        # Ops that ran outside any known module (should not happen) still count.
        for name in set(tallies) | set(training.tallies if training is not None else ()):
            if name not in rows:
                tally = tallies.get(name, ModuleTally())
                rows[name] = _quantities(tally, 0, 0, 0)
                rows[name]["calls"] = tally.calls
                types[name] = "?"
                module_pairs[name] = {OperandPair(*k): v for k, v in tally.macs.items()}
                if training is not None:
                    backward = training.tallies.get(name, ModuleTally())
                    rows[name].update(_training_quantities(rows[name], backward, 0))
                    backward_pairs[name] = {OperandPair(*k): v
                                            for k, v in backward.macs.items()}
        ops = _operator_rows(operators)
        info = {"model": type(model).__name__, "device": device, "inputs": inputs}
        if training is not None:
            info["mode"] = "train"
            info["backward_by_operator"] = _operator_rows(training.operators)
        memory_rows = None
        if memory is not None:
            memory_rows = memory_summary.summary(
                memory, rows, None if training is None else
                (gradient_bytes, largest, trainable_tensors))
        return cls(rows, types, ops, unsupported, info, module_pairs, memory_rows,
                   backward_pairs)

    # -- plain mappings ------------------------------------------------------------------
    @property
    def mode(self) -> str:
        """``"inference"`` (one forward) or ``"train"`` (a training step)."""
        return "train" if self._backward_pairs is not None else "inference"

    @property
    def memory(self) -> Mapping[str, Mapping]:
        """Memory of the run (bytes): ``totals`` and per-module rows under ``modules``;
        the keys are in :mod:`profiler.memory`. Empty for a profile saved without it."""
        return MappingProxyType(self._memory)

    @property
    def backward_by_bits(self) -> Mapping[str, Mapping]:
        """The backward's MACs and BOPs by operand bit pair (train mode; empty otherwise)."""
        by_pair: Counter = Counter()
        for pairs in (self._backward_pairs or {}).values():
            by_pair.update(pairs)
        return MappingProxyType({pair.label: {"macs": n, "bops": n * pair.bops_per_mac,
                                              "class": pair.precision_class}
                                 for pair, n in sorted(by_pair.items())})
    @property
    def totals(self) -> Mapping[str, int]:
        """Whole-model quantities (see the module docstring); raw counts."""
        return MappingProxyType(self._totals)

    @property
    def modules(self) -> Mapping[str, Mapping]:
        """Per-module rows by qualified name (``""`` is the model itself): own ops only."""
        return MappingProxyType({k: MappingProxyType(v) for k, v in self._rows.items()})

    @property
    def by_bits(self) -> Mapping[str, Mapping]:
        """MACs, BOPs and precision class by operand bit pair, widest first, under the
        pairs' labels: ``W32A32``, ``W1A1``, ``A1A1``..."""
        return MappingProxyType(self._bits_table())

    @property
    def pairs(self) -> Mapping[OperandPair, int]:
        """The whole model's MACs by :class:`~profiler.bits.OperandPair`."""
        return MappingProxyType(self._by_pair)

    def _bits_table(self) -> dict:
        return {pair.label: {"macs": count, "bops": count * pair.bops_per_mac,
                             "class": pair.precision_class}
                for pair, count in self._by_pair.items()}

    @property
    def by_operator(self) -> Mapping[str, Mapping]:
        """Calls, MACs and elementwise FLOPs per ATen op (fused kernels under their name)."""
        return MappingProxyType(self._operators)

    @property
    def unsupported(self) -> Mapping[str, int]:
        """Ops that ran but have no formula, with how often they ran (counted as zero)."""
        return MappingProxyType(self._unsupported)

    def module_bits(self, name: str) -> Mapping[str, int]:
        """A module's own MACs by operand bit pair, under the pairs' labels (``W32A32``,
        ``A1A1``...)."""
        return MappingProxyType(self._labelled(self._module_pairs.get(name, {})))

    def module_pairs(self, name: str) -> Mapping[OperandPair, int]:
        """A module's own MACs by :class:`~profiler.bits.OperandPair`."""
        return MappingProxyType(self._module_pairs.get(name, {}))

    @staticmethod
    def _labelled(pairs: Mapping[OperandPair, int]) -> dict:
        return {pair.label: count for pair, count in pairs.items()}

    def module_type(self, name: str) -> str:
        return self._types[name]

    def subtree(self, name: str) -> dict:
        """Quantities of a module including everything below it."""
        total = dict.fromkeys(self._keys, 0)
        for row_name, row in self._rows.items():
            if is_within(row_name, name):
                for key in self._keys:
                    total[key] += row[key]
        return total

    def to_dataframe(self, depth: Optional[int] = None, *, inclusive: bool = False):
        """One row per module: ``module``, ``type``, ``depth``, ``calls`` and the quantities.

        Default: each module's own ops, so the rows sum to the totals. ``depth=N`` folds
        modules deeper than N into their ancestor at depth N (still summing to the
        totals). ``inclusive=True`` gives every module its whole subtree instead (rows then
        overlap and do not sum)."""
        import pandas as pd

        records = []
        for name, row in self._rows.items():
            level = module_depth(name)
            if depth is not None and level > depth:
                continue
            if inclusive:
                values = self.subtree(name)
            elif depth is not None and level == depth:
                values = self.subtree(name)
            else:
                values = {k: row[k] for k in self._keys}
            records.append({"module": name, "type": self._types[name], "depth": level,
                            "calls": row["calls"], **values})
        return pd.DataFrame.from_records(records, columns=["module", "type", "depth", "calls",
                                                          *self._keys])

    def to_csv(self, depth: Optional[int] = None, *, inclusive: bool = False) -> str:
        """:meth:`to_dataframe` as CSV, the model's own row named ``(model)``: an empty
        name reads back as NaN in pandas and other CSV readers."""
        frame = self.to_dataframe(depth, inclusive=inclusive)
        frame["module"] = frame["module"].replace("", ROOT_LABEL)
        return frame.to_csv(index=False)

    def to_dict(self) -> dict:
        data = {
            "info": dict(self.info),
            "totals": dict(self._totals),
            "by_bits": self._bits_table(),
            "by_operator": self._operators,
            "unsupported": self._unsupported,
            "modules": {name: {"type": self._types[name], **row,
                               "macs_by_bits": self._labelled(self._module_pairs.get(name, {}))}
                        for name, row in self._rows.items()},
        }
        if self._backward_pairs is not None:
            data["backward_by_bits"] = dict(self.backward_by_bits)
            for name, entry in data["modules"].items():
                entry["backward_macs_by_bits"] = self._labelled(
                    self._backward_pairs.get(name, {}))
        if self._memory:
            data["memory"] = self._memory
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> "Profile":
        """The inverse of :meth:`to_dict` (for caches and saved profiles)."""
        rows, types, module_pairs = {}, {}, {}
        backward_pairs = {} if "backward_by_bits" in data else None
        for name, entry in data["modules"].items():
            entry = dict(entry)
            types[name] = entry.pop("type")
            module_pairs[name] = {OperandPair.parse(label): count
                                  for label, count in entry.pop("macs_by_bits", {}).items()}
            backward = entry.pop("backward_macs_by_bits", {})
            if backward_pairs is not None:
                backward_pairs[name] = {OperandPair.parse(label): count
                                        for label, count in backward.items()}
            rows[name] = entry
        return cls(rows, types, dict(data["by_operator"]), dict(data["unsupported"]),
                   dict(data["info"]), module_pairs, data.get("memory"), backward_pairs)

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def __repr__(self) -> str:
        t = self._totals
        return (f"Profile({self.info['model']}: params={t['params']}, macs={t['macs']}, "
                f"flops={t['flops']}, bops={t['bops']}, unsupported={len(self._unsupported)})")
