"""Where the time and the CPU went: processes' CPU from /proc, the machine's speed, percentiles."""

import os
import platform
import time
from pathlib import Path

import psycopg

from bench.serving.config import BenchConfig

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds_of(pids: list[int]) -> float:
    return sum(system_and_user_seconds_of(pids))


def system_and_user_seconds_of(pids: list[int]) -> tuple[float, float]:
    """CPU seconds the processes spent in the kernel and in their own code."""
    system = user = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        user, system = user + int(fields[11]), system + int(fields[12])  # utime, stime
    return system / CLOCK_TICKS, user / CLOCK_TICKS


def pids_where(predicate) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if predicate(comm, ppid):
                pids.append(int(entry.name))
    return pids


def server_cpu(workers: list[int], postgres: list[int]) -> dict[str, tuple[float, float]]:
    """(kernel, user) CPU seconds so far of the gunicorn workers and of the benchmark's PostgreSQL backends."""
    return {"gunicorn_workers": system_and_user_seconds_of(workers),
            "postgres_bench_backends": system_and_user_seconds_of(postgres)}


def machine_busy_seconds() -> float:
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def reference_loop_ms() -> float:
    """CPU milliseconds of a fixed pure-Python loop (best of three): how fast this machine's cores are right now.
    Shared VMs vary by half or more within an hour, so compare runs only at similar values."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        total = 0
        for number in range(2_000_000):
            total += number
        best = min(best, (time.process_time() - started) * 1000)
    return best


def postgres_backends(config: BenchConfig) -> list[int]:
    """Process ids of the PostgreSQL backends connected to the benchmark's database (not other people's)."""
    with psycopg.connect(f"{config.postgres}/postgres", autocommit=True) as connection:
        rows = connection.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [config.database])
        return [pid for (pid,) in rows]
