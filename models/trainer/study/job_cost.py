"""What a finished job cost the study's process, as its log entry records it (threads, CPU
time; the machine's CPU is :func:`profiler.calibration.cpu_name`), and the memory it hands
back before the next job runs in the same process."""
from __future__ import annotations

import ctypes
import gc
import time


def torch_threads() -> int:
    """The threads torch computes on, logged beside a job's CPU time (see
    :func:`.budget.had_the_cores`); torch is loaded by then, by the job."""
    import torch

    return torch.get_num_threads()


def cpu_seconds() -> float:
    """CPU time of this process (every thread) and of its finished children (a launcher's
    workers), user and system. Beside a job's wall time it says whether the job had the
    cores to itself: about twice the wall time on 2 idle cores (a teacher iteration: 506 s
    of CPU in 263 s), much less when other work shared them. It is no contention-free cost:
    threads spinning while they wait for a core count too (the same iteration beside a
    test suite: 1 070 s of CPU in 911 s)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def release_freed_memory() -> bool:
    """Hand the heap's freed pages back to the system; True where the C library can.

    Jobs run in this process, and what an SD evaluation frees (its hidden states are 7-12
    GB) stays resident in glibc's heap: the study held 10.8 GB while training a 2 GB job,
    and ``malloc_trim`` took it to 2.7 GB."""
    gc.collect()
    try:
        trim = ctypes.CDLL(None).malloc_trim     # the C library this process runs on
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl) or Windows
        return False
    trim(0)
    return True
