"""One benchmark run: database, seeding, server, clients, measurement, report (see bench/serving/__init__.py)."""

import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import bench.serving
from bench.serving.client import client_process
from bench.serving.config import REPO, BenchConfig, config_from_arguments
from bench.serving.database import database_recreate, django_setup
from bench.serving.measurement import (
    machine_busy_seconds,
    pids_where,
    postgres_backends,
    reference_loop_ms,
    server_cpu,
)
from bench.serving.profiling import PROFILING_ON, profile_summary
from bench.serving.report import database_check_line, machine_line, run_summary
from bench.serving.server import free_port, gunicorn_start, gunicorn_stop


def run(config: BenchConfig) -> dict:
    speed_before = reference_loop_ms()
    print(machine_line(config, speed_before), flush=True)
    started = time.monotonic()
    database_recreate(config)
    django_setup(config)
    # These use the models, so they are imported once Django is set up.
    from django.utils import timezone

    from bench.serving.check import check_failed, database_check
    from bench.serving.in_process import claim_critical_section, explain_claim, in_process_cost
    from bench.serving.seeding import campaign_seed

    campaign, tokens = campaign_seed(config)
    print(f"database {config.database} migrated and seeded ({config.items} comparisons, overlap {config.overlap}) "
          f"in {time.monotonic() - started:.1f} s", flush=True)

    profile_dir = tempfile.mkdtemp(prefix="bench-serve-profile-") if config.profile else None
    port = free_port()
    run_started = timezone.now()
    server = gunicorn_start(config, port, profile_dir)
    try:
        context = multiprocessing.get_context("fork")
        ready, results = context.Event(), context.Queue()
        shares = [tokens[number::config.client_processes] for number in range(config.client_processes)]
        clients = [
            context.Process(target=client_process, args=(port, campaign, share, config.warmup, config.seconds,
                                                         config.seed * 100 + number, ready, results))
            for number, share in enumerate(shares) if share
        ]
        for client in clients:
            client.start()
        time.sleep(1.0)  # let every client open its connections
        ready.set()
        time.sleep(config.warmup)
        if profile_dir:
            (Path(profile_dir) / PROFILING_ON).touch()
        workers = pids_where(lambda comm, ppid: ppid == server.pid)
        postgres = postgres_backends(config)
        server_before, busy_before = server_cpu(workers, postgres), machine_busy_seconds()
        measure_started = time.monotonic()
        outcomes = [results.get() for _ in clients]
        measured = time.monotonic() - measure_started
        postgres = sorted(set(postgres) | set(postgres_backends(config)))
        server_after, busy_after = server_cpu(workers, postgres), machine_busy_seconds()
        for client in clients:
            client.join()
    finally:
        gunicorn_stop(server)

    acknowledged = [value for outcome in outcomes for value in outcome["acknowledged"]]
    check = database_check(campaign, acknowledged, since=run_started)
    summary = run_summary(config=config, outcomes=outcomes, server_before=server_before, server_after=server_after,
                          busy_seconds=busy_after - busy_before, measured=measured, check=check,
                          speed_before=speed_before)
    if config.critical_section:
        summary["critical_section"] = claim_critical_section(campaign, config.critical_section)
    if config.in_process:
        summary["in_process"] = in_process_cost(campaign, config.in_process)
    print(json.dumps(summary, indent=2), flush=True)
    if profile_dir:
        profile_summary(profile_dir)
        explain_claim(campaign)
    summary["failed"] = check_failed(check)
    print(database_check_line(summary["failed"]))
    return summary


def main(argv: list[str] | None = None) -> None:
    config = config_from_arguments(argv, description=bench.serving.__doc__.split("\n\n")[0])
    os.chdir(REPO)  # Celery's loader puts the working directory first on sys.path
    summary = run(config)
    sys.exit(1 if summary["failed"] else 0)
