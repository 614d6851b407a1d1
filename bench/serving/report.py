"""What a run prints: the machine and config before, the summary of the measured window after."""

import math
import os
from collections import Counter
from dataclasses import asdict

from bench.serving.client import SLICE_SECONDS
from bench.serving.config import BenchConfig
from bench.serving.measurement import cpu_model, percentile, reference_loop_ms


def machine_line(config: BenchConfig, speed_before: float) -> str:
    return (f"machine: {cpu_model()}, {os.cpu_count()} cores, load average before {os.getloadavg()[0]:.2f}, "
            f"reference loop {speed_before:.0f} ms; config: {asdict(config)}")


def run_summary(*, config: BenchConfig, outcomes: list[dict], server_before: dict, server_after: dict,
                busy_seconds: float, measured: float, check: dict, speed_before: float) -> dict:
    """The summary of a run from the client processes' outcomes and the CPU read around the measured window."""
    next_ms = [value for outcome in outcomes for value in outcome["next_ms"]]
    submit_ms = [value for outcome in outcomes for value in outcome["submit_ms"]]
    errors = sum((outcome["errors"] for outcome in outcomes), Counter())
    stopped = sum((outcome["stopped"] for outcome in outcomes), Counter())
    by_slice = sum((outcome["by_slice"] for outcome in outcomes), Counter())
    judgements = sum(by_slice.values())
    slices = math.ceil(config.seconds / SLICE_SECONDS)
    by_slice[slices - 1] += by_slice.pop(slices, 0)  # one answered at the very deadline: the last slice
    kernel = {name: server_after[name][0] - server_before[name][0] for name in server_after}
    cpu = {name: sum(server_after[name]) - sum(server_before[name]) for name in server_after} | {
        "bench_clients": sum(outcome["cpu_seconds"] for outcome in outcomes),
    }
    # The CPU window runs until the last client is done, so it is shared by every judgement after the warm-up.
    cpu_ms_per_judgement = sum(cpu.values()) * 1000 / max(sum(outcome["after_warmup"] for outcome in outcomes), 1)
    return {
        "judgements": judgements,
        "seconds": config.seconds,
        "judgements_per_second": round(judgements / config.seconds, 1),
        # The same, slice by slice through the measured time (the last slice may be shorter): is it steady?
        f"judgements_per_second_each_{SLICE_SECONDS}_s": [
            round(by_slice[number] / min(SLICE_SECONDS, config.seconds - number * SLICE_SECONDS), 1)
            for number in range(slices)
        ],
        "next_p50_ms": round(percentile(next_ms, 0.50), 1),
        "next_p99_ms": round(percentile(next_ms, 0.99), 1),
        "submit_p50_ms": round(percentile(submit_ms, 0.50), 1),
        "submit_p99_ms": round(percentile(submit_ms, 0.99), 1),
        "errors": dict(errors),
        "labelers_stopped_early": dict(stopped),
        "cpu_seconds": {name: round(value, 1) for name, value in cpu.items()} | {
            "whole_machine": round(busy_seconds, 1),
            "window_seconds": round(measured, 1),
            "available": round(measured * os.cpu_count(), 1),
        },
        # Of those seconds, the ones spent in the kernel (sockets, context switches, page faults).
        "cpu_seconds_in_kernel": {name: round(value, 1) for name, value in kernel.items()},
        "cpu_ms_per_judgement": round(cpu_ms_per_judgement, 2),
        # What the same work would allow if this machine's cores did nothing else.
        "judgements_per_second_if_cores_were_ours": round(os.cpu_count() * 1000 / cpu_ms_per_judgement, 1),
        "database_check": check,
        "load_average_after": round(os.getloadavg()[0], 2),
        "reference_loop_ms": {"before": round(speed_before), "after": round(reference_loop_ms())},
    }


def database_check_line(failed: bool) -> str:
    return "database check: " + ("FAILED" if failed else
                                 "every acknowledged judgement stored and charged exactly once")
