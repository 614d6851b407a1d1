"""CPU instructions a judgement costs the web server: a count that stays put while the VM's speed does not.

    .venv/bin/python bench/hot_path_instructions.py [--judgements 200] [--http] [--tree PATH]

bench/serve.py measures judgements per second, which on a shared 2-core VM moves by 2x within an hour with
the same code. This script counts instructions instead, with valgrind's callgrind (Debian package `valgrind`):
the same code, data and path give the same count, so two versions of the code can be compared at any time.

It seeds a small database of its own (default rlhf_bench_instructions, recreated every run) with
bench/serve.py's seeding (bench/serving/), then runs next item -> submit cycles over token auth and prints the Python
process's instructions per judgement, counted over `--judgements` cycles after a warm-up:
- default: through the WSGI application in one process (middleware, views, services, the database driver);
- `--http`: in one gunicorn sync worker as deployed, driven over HTTP, so gunicorn's own HTTP handling counts.
PostgreSQL's own work is not counted (bench/serve.py reports its CPU). `--tree` imports the code from another
checkout (a `git worktree` of an older commit), against the same database, for a side-by-side count; the
harness (bench/serving/) is always this checkout's.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.serving.config import CAMPAIGN, LABELER_PREFIX, BenchConfig, server_environment  # noqa: E402
from bench.serving.database import database_recreate, django_setup  # noqa: E402
from bench.serving.server import free_port  # noqa: E402

# Runs under callgrind, in the served tree with this checkout's harness after it on the path: warm up, zero the
# counts, run the measured cycles, dump them. (`in_process_cost(n)` runs min(n, 100) cycles of its own warm-up
# before its n: `measured_cycles` counts them too.)
IN_PROCESS = """
import os, subprocess, sys
sys.path[:0] = [os.getcwd(), os.environ["BENCH_HARNESS"]]
from bench.serving.config import CAMPAIGN, BenchConfig
from bench.serving.database import django_setup
django_setup(BenchConfig(database=os.environ["BENCH_DATABASE"]))
from bench.serving.in_process import in_process_cost
in_process_cost(CAMPAIGN, 50)
subprocess.run(["callgrind_control", "--zero", str(os.getpid())], check=True, capture_output=True)
in_process_cost(CAMPAIGN, int(os.environ["BENCH_JUDGEMENTS"]))
subprocess.run(["callgrind_control", "--dump", str(os.getpid())], check=True, capture_output=True)
"""


def callgrind_total(path: Path) -> int:
    return int(re.search(r"^(?:summary|totals): (\d+)", path.read_text(errors="ignore"), re.M).group(1))


def measured_cycles(judgements: int) -> int:
    return judgements + min(judgements, 100)


def count_in_process(tree: Path, config: BenchConfig, judgements: int, out: Path) -> int:
    """Instructions per judgement of in-process WSGI calls."""
    env = server_environment(config) | {"BENCH_DATABASE": config.database, "BENCH_JUDGEMENTS": str(judgements),
                                        "BENCH_HARNESS": str(REPO)}
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/in-process.%p", sys.executable, "-c", IN_PROCESS],
        cwd=tree, env=env, check=True, capture_output=True,
    )
    return measured_part(out, "in-process.") // measured_cycles(judgements)


def measured_part(out: Path, prefix: str) -> int:
    """The dump made right after the measured cycles: the part after the zeroing, of the process that did it."""
    dumps = sorted(out.glob(f"{prefix}*.*"), key=lambda path: path.stat().st_mtime)
    if not dumps:
        raise SystemExit("callgrind wrote no dump after the measured cycles")
    return callgrind_total(dumps[-1])


def count_http(tree: Path, config: BenchConfig, judgements: int, out: Path) -> int:
    """Instructions per judgement of one sync worker under callgrind; the client (not counted) runs the cycles
    over HTTP, one connection per request as sync workers serve them."""
    import http.client

    from rest_framework.authtoken.models import Token

    port = free_port()
    env = server_environment(config) | {"PYTHONPATH": str(tree)}
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--trace-children=yes", f"--callgrind-out-file={out}/http.%p",
         str(Path(sys.executable).parent / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--worker-class", "sync", "--timeout", "600", "--log-level", "warning"],
        cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    keys = list(Token.objects.filter(user__username__startswith=f"{LABELER_PREFIX}-").values_list("key", flat=True))

    def call(method: str, path: str, key: str, body: bytes = b"") -> bytes:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        headers = {"Authorization": f"Token {key}", "Content-Type": "application/json"}
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        if response.status >= 300:
            raise SystemExit(f"{method} {path}: {response.status} {payload[:200]!r}")
        return payload

    def cycles(start: int, count: int) -> None:
        for number in range(start, start + count):
            key = keys[number % len(keys)]
            item = json.loads(call("GET", f"/api/campaigns/{CAMPAIGN}/next/", key))
            answer = json.dumps({"choice": "first", "milliseconds": 3000}).encode()
            call("POST", f"/api/assignments/{item['assignment_id']}/judgement/", key, answer)

    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                call("GET", "/api/campaigns/", keys[0])
                break
            except (ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise SystemExit("gunicorn under callgrind did not answer in 10 minutes") from None
                time.sleep(2)
        cycles(0, 50)
        subprocess.run(["callgrind_control", "--zero"], check=True, capture_output=True)
        cycles(50, judgements)
        subprocess.run(["callgrind_control", "--dump"], check=True, capture_output=True)
    finally:
        server.terminate()
        server.wait(timeout=120)
    measured = max(out.glob("http.*.*"), key=callgrind_total)  # the worker's part, not the arbiter's idle one
    return callgrind_total(measured) // judgements


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--judgements", type=int, default=200, help="measured next -> submit cycles (default 200)")
    parser.add_argument("--http", action="store_true", help="count one gunicorn sync worker over HTTP")
    parser.add_argument("--tree", type=Path, default=REPO, help="checkout whose code runs (default: this one)")
    parser.add_argument("--database", default="rlhf_bench_instructions", help="database to recreate and use")
    args = parser.parse_args(argv)
    if subprocess.run(["which", "valgrind"], capture_output=True).returncode:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    # A small campaign: the counts per judgement do not depend on its size (bench/serve.py's history is for time).
    config = BenchConfig(database=args.database, items=4000, history=1000)
    os.chdir(REPO)
    database_recreate(config)
    django_setup(config)
    from bench.serving.seeding import campaign_seed  # uses the models: once Django is set up

    campaign_seed(config)
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as out:
        count = (count_http if args.http else count_in_process)(args.tree.resolve(), config, args.judgements, Path(out))
    print(json.dumps({
        "tree": str(args.tree.resolve()),
        "path": "one gunicorn sync worker, over HTTP" if args.http else "in-process WSGI calls",
        "judgements": args.judgements,
        "instructions_per_judgement": count,
        "millions": round(count / 1e6, 3),
    }, indent=2))


if __name__ == "__main__":
    main()
