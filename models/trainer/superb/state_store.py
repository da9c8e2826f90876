"""Where a task's extracted hidden states are kept: in memory, or in a temporary file.

Frame-level states are large: every hidden state of every frame, in float32. SD's default
corpus (4.2 h of audio, 50 frames a second) holds 13 GB of them for sparseformer-dn-s (17
states of 256) and 30 GB for the vanilla Transformer (13 of 768), more than this
project's 24 GiB machines have. Past a share of the memory available when extraction
starts, the states go to an unnamed temporary file instead, mapped back into memory
copy-on-write: the heads read the same float32 values (the operating system pages them in
and out), so no number changes, only where the bytes live. The file is unlinked from the
start, so it goes away with the last tensor that maps it, even after a crash.
"""
from __future__ import annotations

import tempfile
from typing import List, Optional, Tuple

import numpy as np
import torch

# The share of the available memory a split's states may take before they go to a file:
# the other splits, the head's batches and a second evaluation (a study's other shard)
# need the rest.
MEMORY_SHARE = 0.5


def available_memory_bytes() -> Optional[int]:
    """MemAvailable from /proc/meminfo, or None where there is none (not Linux)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_limit_bytes() -> Optional[int]:
    """How many bytes of states a split keeps in memory (None: no limit known)."""
    available = available_memory_bytes()
    return None if available is None else int(MEMORY_SHARE * available)


class StateStore:
    """Collects one tensor per utterance, in any order, and hands them back in index order:
    as they came (in memory) or, once :meth:`decide` has chosen the file, as views of one
    mapped file."""

    def __init__(self, count: int, limit_bytes: Optional[int]) -> None:
        self.limit_bytes = limit_bytes
        self.on_disk: Optional[bool] = None      # decided on the first frame-level tensor
        self._tensors: List[Optional[torch.Tensor]] = [None] * count
        self._places: List[Optional[Tuple[int, Tuple[int, ...]]]] = [None] * count
        self._file = None
        self._offset = 0

    def decide(self, expected_bytes: int) -> bool:
        """Choose memory or file for states expected to take ``expected_bytes`` in all."""
        if self.on_disk is None:
            self.on_disk = self.limit_bytes is not None and expected_bytes > self.limit_bytes
            if self.on_disk:
                self._file = tempfile.TemporaryFile(prefix="superb-states-")
        return self.on_disk

    def put(self, index: int, tensor: torch.Tensor) -> None:
        if not self.on_disk:
            # a copy, not a view: a view would keep the whole padded batch alive
            self._tensors[index] = tensor.clone().cpu()
            return
        array = np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype=np.float32)
        self._file.write(array.tobytes())
        self._places[index] = (self._offset, array.shape)
        self._offset += array.size

    def tensors(self) -> List[torch.Tensor]:
        if not self.on_disk:
            return self._tensors  # type: ignore[return-value]
        self._file.flush()
        # copy-on-write: writable for torch.from_numpy, and nothing goes back to the file
        mapped = np.memmap(self._file, dtype=np.float32, mode="c", shape=(self._offset,))
        self._file.close()                       # the mapping keeps its own reference
        out = []
        for offset, shape in self._places:      # type: ignore[misc]
            size = int(np.prod(shape))
            out.append(torch.from_numpy(mapped[offset:offset + size].reshape(shape)))
        return out

    def discard(self) -> None:
        """Drop a file not yet mapped (extraction failed half-way)."""
        if self._file is not None and not self._file.closed:
            self._file.close()
