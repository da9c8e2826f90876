"""Process groups for multi-device training, as set up by torchrun (or DeepSpeed's launcher).

torchrun exports ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` to every process; :func:`setup` reads them and joins the group with
NCCL when a GPU is used and gloo on the CPU. Without those variables everything runs in
one process and the helpers below are no-ops, so the same training code serves both.
"""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from typing import List, Optional

import torch

from profiler.option_values import check_device


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: Optional[str] = None     # "gloo" | "nccl" | None (single process)
    owns_group: bool = False          # whether setup() created the process group

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment (0, 1, 0 without it)."""
    def read(name: str, default: int) -> int:
        value = os.environ.get(name)
        try:
            return int(value) if value not in (None, "") else default
        except ValueError:
            raise ValueError(f"environment variable {name}={value!r} is not an integer") from None
    return read("RANK", 0), read("WORLD_SIZE", 1), read("LOCAL_RANK", 0)


def pick_device(local_rank: int, requested: Optional[str] = None) -> torch.device:
    """``requested`` ("cpu", "cuda", "cuda:1"), else this process's GPU, else the CPU."""
    if requested not in (None, "auto"):
        device = torch.device(check_device(requested))   # a one-line ValueError if not
        if device.type != "cuda" or device.index is not None:
            return device
        # a bare "cuda" means this process's GPU, as below (torch.cuda.set_device needs an
        # index)
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def setup(device: Optional[str] = None, *, init_group: bool = True) -> Context:
    """Join the process group torchrun describes (if any) and pick this process's device."""
    import torch.distributed as dist

    rank, world_size, local_rank = env_world()
    chosen = pick_device(local_rank, device)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if world_size <= 1:
        return Context(0, 1, 0, chosen, None, False)
    backend = "nccl" if chosen.type == "cuda" else "gloo"
    if backend == "nccl":
        check_one_gpu_per_process(world_size)
    owns = False
    if dist.is_initialized():
        backend = dist.get_backend()
    elif init_group:
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
        owns = True
    return Context(rank, world_size, local_rank, chosen, backend, owns)


def check_one_gpu_per_process(world_size: int) -> None:
    """NCCL refuses two ranks on one GPU ("invalid usage", after the launch): say so first."""
    from ..errors import DataError

    try:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    except ValueError:
        local = world_size
    gpus = torch.cuda.device_count()
    if local > gpus:
        raise DataError(f"NCCL needs one GPU per process: {local} processes on this machine, "
                        f"{gpus} GPU(s); start at most {gpus} (torchrun --nproc_per_node "
                        f"{gpus}) or train on the CPU over gloo (--device cpu)")


def teardown(context: Context) -> None:
    import torch.distributed as dist

    if context.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: Context) -> None:
    import torch.distributed as dist

    if context.distributed and dist.is_initialized():
        if context.backend == "nccl":
            dist.barrier(device_ids=[context.device.index])
        else:
            dist.barrier()


def all_reduce_sum(values: List[float], context: Context) -> List[float]:
    """Sum a few numbers over all processes (float64, so counts stay exact)."""
    if not context.distributed:
        return [float(v) for v in values]
    import torch.distributed as dist

    tensor = torch.tensor(values, dtype=torch.float64, device=context.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().tolist()


def broadcast_object(value, context: Context):
    """rank 0's ``value`` on every process."""
    if not context.distributed:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def parameter_checksum(module: torch.nn.Module) -> str:
    """CRC-32 over the exact bytes of every parameter and buffer, in state_dict order."""
    crc = 0
    for name, tensor in module.state_dict().items():
        if not torch.is_tensor(tensor):
            continue
        crc = zlib.crc32(name.encode(), crc)
        crc = zlib.crc32(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy()
                         .tobytes(), crc)
    return f"{crc:08x}"


def gather_checksums(module: torch.nn.Module, context: Context) -> List[str]:
    """Every rank's :func:`parameter_checksum` (to check that replicas agree)."""
    mine = parameter_checksum(module)
    if not context.distributed:
        return [mine]
    import torch.distributed as dist

    out: List[Optional[str]] = [None] * context.world_size
    dist.all_gather_object(out, mine)
    return [str(v) for v in out]
