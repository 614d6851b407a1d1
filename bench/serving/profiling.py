"""`--profile`: cProfile in the gunicorn workers after the warm-up (the claim's plans: bench.serving.in_process).

The hooks are loaded by gunicorn from a generated config file: one cProfile per worker thread (a profiler
only sees the thread that enabled it), counting requests only once the run touches the PROFILING_ON file.
"""

import os
import pstats
import time
from pathlib import Path

from bench.serving.config import REPO

PROFILING_ON = "profiling-on"
profilers: list = []  # this worker's, one a thread


def profile_hooks_write(profile_dir: str) -> Path:
    """The gunicorn config file that installs the hooks below. This checkout goes on the path after the
    served tree's, so `--tree` serves the other tree's site with these hooks."""
    hooks = Path(profile_dir) / "gunicorn_profile_hooks.py"
    hooks.write_text(
        "import sys\n"
        f"sys.path.append({str(REPO)!r})\n"
        "from bench.serving.profiling import gunicorn_post_worker_init as post_worker_init\n"
        "from bench.serving.profiling import gunicorn_worker_exit as worker_exit\n"
    )
    return hooks


def gunicorn_post_worker_init(worker) -> None:
    import cProfile
    import threading

    app, local = worker.wsgi, threading.local()
    switch = Path(os.environ["BENCH_PROFILE_DIR"]) / PROFILING_ON

    def profiled_app(environ, start_response):
        if not switch.exists():
            return app(environ, start_response)
        if not hasattr(local, "profiler"):
            local.profiler = cProfile.Profile(time.thread_time)  # CPU time: waiting on locks costs nothing here
            profilers.append(local.profiler)
        return local.profiler.runcall(app, environ, start_response)

    worker.wsgi = profiled_app


def gunicorn_worker_exit(server, worker) -> None:
    for number, profiler in enumerate(profilers):
        profiler.dump_stats(Path(os.environ["BENCH_PROFILE_DIR"]) / f"worker-{os.getpid()}-{number}.prof")


def profile_summary(profile_dir: str) -> None:
    files = sorted(Path(profile_dir).glob("worker-*.prof"))
    if not files:
        print("no profiles were written")
        return
    stats = pstats.Stats(str(files[0]))
    for path in files[1:]:
        stats.add(str(path))
    stats.strip_dirs().sort_stats("cumulative").print_stats(35)
    stats.sort_stats("tottime").print_stats(20)
