"""Where models run: CUDA when available, else CPU; seeding; how many CPU threads torch gets."""

import contextlib
import os
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch


def pick_device() -> str:
    """"cuda" when a CUDA device is visible, else "cpu"."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def device_name() -> str:
    """A human-readable name of the device `pick_device()` chooses ("cpu" or e.g. "NVIDIA H100 80GB HBM3");
    the site prices GPU time by it."""
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all CUDA devices included)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def cpu_thread_count() -> int:
    """Threads worth giving torch now: OMP_NUM_THREADS when set; else the cores this process may run on (capped
    by a cgroup v2 CPU quota, where torch would count the host's cores) less those other work keeps busy.

    Why the load matters: torch's threads wait for each other at every operation, so one busy core slows them
    all; on 2 cores at load 9 a small GPT-2 trained at ~10k tokens/s on 1 thread and ~1.5k on 2.
    """
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, min(cores, round(cores - os.getloadavg()[0])))


@contextlib.contextmanager
def cpu_threads(count: int | None = None) -> Iterator[int]:
    """Run a block with torch using `count` CPU threads (default: cpu_thread_count()), restored afterwards."""
    previous = torch.get_num_threads()
    count = count or cpu_thread_count()
    torch.set_num_threads(count)
    try:
        yield count
    finally:
        torch.set_num_threads(previous)
