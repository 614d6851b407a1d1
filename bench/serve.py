"""Serving benchmark: N simulated labelers over real HTTP against the site on gunicorn + PostgreSQL.

    .venv/bin/python bench/serve.py --labelers 50 --seconds 20

What it does: creates its own database (default rlhf_bench; dropped and recreated every run) and migrates
it. It seeds one big pairwise campaign whose money budget is far above what the run can spend, so every
claim still goes through the budget lock and check. The first `--history` comparisons already carry their
paid judgements, as a campaign that has run for a while does. It makes one simulated labeler account per
client, starts gunicorn on 127.0.0.1 and a free port, and lets the labelers loop next item -> submit: a
warm-up, then a fixed measured time. It prints judgements per second, p50 / p99 latency of both calls and
where the CPU went. It then checks in the database that every acknowledged judgement is stored exactly
once and charged exactly once, and that nothing unacknowledged was stored.

The server runs as the README deploys it, gunicorn sync workers, which answer one request per connection; but
here PostgreSQL and the clients share the same cores, so it runs one worker a core plus one by default (3 on 2
cores). Every extra process costs CPU in switching: in interleaved runs on 2 cores, 3 workers took 7.1 ms of CPU
a judgement against 8.1 ms for 4 and served 10 % more; 8 workers were up to 20 % slower than 4. Where
PostgreSQL has its own machine (the README's deployment) a request waits on it, and 2 or more a core pay.
A sync worker takes the next waiting request from the shared listen queue, so requests are served about in
arrival order, and p99 stays near 1.4 x p50; gthread workers (`--worker-class gthread --workers 2 --threads 4`)
save the connection per request but were no faster on 2 cores, with p99 2 to 4 x p50, since each keeps its own
connections.

The clients are a few processes, each a selector loop over one non-blocking socket per labeler (reopened when
the server closes it, as sync workers do) and a minimal HTTP/1.1 client, so that they cost as little CPU as
possible. They still share the machine's cores with gunicorn and PostgreSQL, and the printed CPU split says how
much they took. Labelers answer "first" or "second" at random: the gold model's cost is not what is measured
here.

`--profile` runs every request after the warm-up under cProfile (CPU time) in the gunicorn workers, prints
where server time goes, and EXPLAINs the claim statement. `--critical-section N` times N claims
made one after another in-process: on a budgeted campaign claims are serial, so that bounds throughput.
`--in-process N` runs N next -> submit cycles through the WSGI application in one thread (no HTTP, no
concurrency) and splits their CPU into Python and PostgreSQL.
"""

import argparse
import io
import json
import math
import multiprocessing
import os
import platform
import random
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SLICE_SECONDS = 5  # judgements per second are also printed for each slice this long


def _option(default, description: str):
    return field(default=default, metadata={"help": description})


@dataclass
class BenchConfig:
    labelers: int = _option(50, "simulated labelers working at once, one connection each")
    seconds: float = _option(20.0, "how long they are measured")
    warmup: float = _option(3.0, "seconds of work before measuring (first requests import code, open connections)")
    client_processes: int = _option(2, "processes the labelers are spread over")
    workers: int = _option((os.cpu_count() or 1) + 1, "gunicorn worker processes")
    threads: int = _option(1, "threads per gunicorn worker (gthread only)")
    worker_class: str = _option(
        "sync", "gunicorn worker class: sync (as deployed: one request per connection, behind a proxy) or gthread "
        "(keep-alive connections shared by each worker's threads)")
    items: int = _option(60_000, "comparisons in the campaign")
    history: int = _option(20_000, "of those, how many (at the head of the queue) were already judged and paid")
    overlap: int = _option(2, "judgements wanted per comparison")
    database: str = _option("rlhf_bench", "database to drop, create and use")
    postgres: str = _option("postgres://postgres@127.0.0.1:5432", "PostgreSQL server URL, without a database")
    profile: bool = _option(False, "profile the gunicorn workers and EXPLAIN the claim statement")
    critical_section: int = _option(0, "also time this many serial in-process claims (no HTTP)")
    in_process: int = _option(0, "also measure CPU per judgement over this many next -> submit cycles in-process (no HTTP, one thread)")
    seed: int = _option(0, "seeds the labelers' random answers")
    tree: str = _option("", "serve the code of another checkout (a git worktree of an older commit): a side by side "
                            "with the same clients, database and seeding")


# ---------------------------------------------------------------- database, seeding, the server

def database_url(config: BenchConfig) -> str:
    return f"{config.postgres}/{config.database}"


def server_environment(config: BenchConfig) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(config),
        "DB_CONN_MAX_AGE": "600",
        "DEBUG": "0",
        "SECRET_KEY": "serving-benchmark-only",
        "LOG_LEVEL": "ERROR",
        "PYTHONWARNINGS": "ignore:No directory at",  # whitenoise, before collectstatic; the API serves no files
        "PYTHONPATH": str(REPO),
    }


# Connections that hold this process's claim on its benchmark database until the process exits.
_database_claims: list = []


def database_recreate(config: BenchConfig) -> None:
    """Drop and recreate the benchmark's database, and migrate it. A second run on the same database would drop
    it under the first (whose judgements would then all read as lost), so each run first claims the name with a
    PostgreSQL advisory lock, held until its process exits, and a run that cannot claim it stops here."""
    import psycopg

    connection = psycopg.connect(f"{config.postgres}/postgres", autocommit=True)
    [(claimed,)] = connection.execute(
        "SELECT pg_try_advisory_lock(hashtext(%s))", [f"bench database {config.database}"]
    ).fetchall()
    if not claimed:
        connection.close()
        sys.exit(f"Database {config.database} is in use by another benchmark run: wait for it to end, or pass "
                 "--database with another name.")
    _database_claims.append(connection)
    connection.execute(f'DROP DATABASE IF EXISTS "{config.database}" WITH (FORCE)')  # a crashed run's sessions
    connection.execute(f'CREATE DATABASE "{config.database}"')
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO,
                   env=server_environment(config), check=True)


def django_setup(config: BenchConfig) -> None:
    os.environ.update({k: v for k, v in server_environment(config).items() if k != "PYTHONPATH"})
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def campaign_seed(config: BenchConfig) -> tuple[str, list[str]]:
    """One big pairwise campaign and the labelers' accounts; returns (campaign name, API tokens)."""
    from decimal import Decimal

    from django.db import connections, transaction

    from annotator.models import Campaign, Comparison, Completion, Prompt
    from annotator.services.simulation import simulated_labelers_ensure

    if config.history > config.items or (config.history and config.labelers < config.overlap):
        raise SystemExit("--history needs at most --items comparisons and at least --overlap labelers")

    with transaction.atomic():
        campaign = Campaign.objects.create(
            name="serving-bench", title="Serving benchmark", instructions="Pick the better continuation.",
            overlap=config.overlap, pay_per_judgement=Decimal("0.10"), money_budget=Decimal("1000000"),
        )
        prompts = Prompt.objects.bulk_create(
            Prompt(campaign=campaign, text=f"Prompt {n}: shall I compare thee to a summer's day?")
            for n in range(config.items)
        )
        completions = Completion.objects.bulk_create(
            Completion(prompt=prompt, text=f" Thou art more {side} and more temperate, take {prompt.pk}.")
            for prompt in prompts for side in ("lovely", "dreary")
        )
        comparisons = Comparison.objects.bulk_create(
            Comparison(campaign=campaign, prompt=prompt, completion_a=completions[2 * n],
                       completion_b=completions[2 * n + 1], judgements_wanted=config.overlap)
            for n, prompt in enumerate(prompts)
        )
        # Paid at the campaign's rate (None), like people, so every submit writes a real charge.
        accounts = simulated_labelers_ensure(count=config.labelers, prefix="bench", pay_per_judgement=None)
        history_seed(campaign, comparisons[: config.history], [user for user, _ in accounts], config.overlap)
    with connections["default"].cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    connections.close_all()  # the client processes are forked from this one
    return campaign.name, [token for _, token in accounts]


def history_seed(campaign, comparisons, labelers, overlap: int) -> None:
    """Past work: each comparison judged `overlap` times by different labelers and paid, as a running campaign
    has. Without it a benchmark flatters every query that grows with the campaign's history."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from annotator.models import Assignment, AssignmentStatus, Comparison, Judgement, LedgerCategory, LedgerEntry

    then = timezone.now() - timedelta(days=1)
    price = campaign.pay_per_judgement
    assignments = Assignment.objects.bulk_create(
        (
            Assignment(comparison=comparison, labeler=labelers[(n + k) % len(labelers)],
                       status=AssignmentStatus.SUBMITTED, leased_at=then, leased_until=then + timedelta(minutes=5),
                       submitted_at=then + timedelta(minutes=1), reserved_amount=price)
            for n, comparison in enumerate(comparisons) for k in range(overlap)
        ),
        batch_size=5000,
    )
    Judgement.objects.bulk_create(
        (Judgement(assignment=assignment, choice="a", milliseconds=4000) for assignment in assignments),
        batch_size=5000,
    )
    LedgerEntry.objects.bulk_create(
        (
            LedgerEntry(campaign=campaign, category=LedgerCategory.LABELING, amount=price, quantity=Decimal(1),
                        unit="judgements", labeler=assignment.labeler, assignment=assignment)
            for assignment in assignments
        ),
        batch_size=5000,
    )
    # They have every judgement they want, so they are closed, as the submit of their last judgement does.
    Comparison.objects.filter(pk__in=[comparison.pk for comparison in comparisons]).update(is_open=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gunicorn_start(config: BenchConfig, port: int, profile_dir: str | None) -> subprocess.Popen:
    command = [
        str(Path(PYTHON).parent / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", str(config.workers), "--worker-class", config.worker_class, "--threads", str(config.threads),
        "--keep-alive", "30", "--backlog", "256", "--log-level", "warning",
    ]
    env = server_environment(config)
    if profile_dir:
        hooks = Path(profile_dir) / "gunicorn_profile_hooks.py"
        hooks.write_text(
            "from bench.serve import gunicorn_post_worker_init as post_worker_init\n"
            "from bench.serve import gunicorn_worker_exit as worker_exit\n"
        )
        command += ["--config", str(hooks)]
        env["BENCH_PROFILE_DIR"] = profile_dir
    tree = Path(config.tree).resolve() if config.tree else REPO
    env["PYTHONPATH"] = str(tree)
    server = subprocess.Popen(command, cwd=tree, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                # The login page: public, so the probe is not logged as a refused request.
                probe.sendall(b"GET /accounts/login/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                if probe.recv(12).startswith(b"HTTP/1."):
                    return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("gunicorn did not answer within 60 s")


def gunicorn_stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


# Profiling hooks, loaded by gunicorn from the generated config file: one cProfile per worker thread (a
# profiler only sees the thread that enabled it), counting requests only once the warm-up is over.
_profilers: list = []
PROFILING_ON = "profiling-on"


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
            _profilers.append(local.profiler)
        return local.profiler.runcall(app, environ, start_response)

    worker.wsgi = profiled_app


def gunicorn_worker_exit(server, worker) -> None:
    for number, profiler in enumerate(_profilers):
        profiler.dump_stats(Path(os.environ["BENCH_PROFILE_DIR"]) / f"worker-{os.getpid()}-{number}.prof")


# ---------------------------------------------------------------- the clients

class Labeler:
    """One simulated labeler: next item -> submit, over one non-blocking socket at a time, speaking just enough
    HTTP/1.1 for this API. Driven by `client_process`'s selector: no transport or stream objects per connection,
    since sync workers close the connection after every answer and the client opens one per request."""

    def __init__(self, *, port: int, token: str, campaign: str, rng: random.Random, window: tuple[float, float],
                 result: dict, selector: selectors.BaseSelector):
        self.port, self.rng, self.window, self.result, self.selector = port, rng, window, result, selector
        self.headers = f"Host: 127.0.0.1:{port}\r\nAuthorization: Token {token}\r\nAccept: application/json\r\n"
        self.next_path = f"/api/campaigns/{campaign}/next/"
        self.sock: socket.socket | None = None
        self.reused = False  # the request went on a kept-alive connection (the server may have closed it)
        self.done = False

    # -- one request
    def send(self, method: str, path: str, body: bytes = b"") -> None:
        self.method, self.path, self.body = method, path, body
        extra = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if body else ""
        self.outgoing = f"{method} {path} HTTP/1.1\r\n{self.headers}{extra}\r\n".encode() + body
        self.incoming = bytearray()
        self.started = time.monotonic()
        self.reused = self.sock is not None
        if self.sock is None:
            self.sock = socket.socket()
            self.sock.setblocking(False)
            self.sock.connect_ex(("127.0.0.1", self.port))
            self.selector.register(self.sock, selectors.EVENT_WRITE, self)
        else:
            self.selector.modify(self.sock, selectors.EVENT_WRITE, self)

    def on_event(self, mask: int) -> None:
        try:
            if mask & selectors.EVENT_WRITE:
                sent = self.sock.send(self.outgoing)
                self.outgoing = self.outgoing[sent:]
                if not self.outgoing:
                    self.selector.modify(self.sock, selectors.EVENT_READ, self)
                return
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("closed by the server")
        except (ConnectionError, OSError):
            # A kept-alive connection the server closed: reconnect and resend. A resent submit that had landed
            # answers 409 already_submitted, which counts as acknowledged.
            if self.reused and not self.incoming:
                self.close()
                self.send(self.method, self.path, self.body)
                return
            raise
        self.incoming += chunk
        head_end = self.incoming.find(b"\r\n\r\n")
        if head_end < 0:
            return
        lines = self.incoming[:head_end].decode("latin-1").split("\r\n")
        headers = dict((name.strip().lower(), value.strip()) for name, _, value in
                       (line.partition(":") for line in lines[1:]))
        if "chunked" in headers.get("transfer-encoding", ""):
            raise RuntimeError("chunked answers are not expected from this API")
        length = int(headers.get("content-length", "0"))
        if len(self.incoming) < head_end + 4 + length:
            return
        payload = bytes(self.incoming[head_end + 4: head_end + 4 + length])
        if headers.get("connection", "").lower() == "close":
            self.close()
        self.answered(int(lines[0].split(" ", 2)[1]), payload)

    def close(self) -> None:
        if self.sock is not None:
            self.selector.unregister(self.sock)
            self.sock.close()
            self.sock = None

    # -- the loop: next -> submit until the end of the window. Latencies and judgements count only inside it,
    # but every acknowledged judgement is kept for the database check.
    def start(self) -> None:
        self.send("GET", self.next_path)

    def answered(self, status: int, payload: bytes) -> None:
        measure_from, deadline = self.window
        finished, result = time.monotonic(), self.result
        if self.method == "GET":
            if self.started >= measure_from:
                result["next_ms"].append((finished - self.started) * 1000)
            if status in (204, 402):
                result["stopped"][str(status)] += 1
                return self.stop()
            if status != 200:
                result["errors"][f"next {status}"] += 1
                return self.start() if finished < deadline else self.stop()
            self.assignment_id = json.loads(payload)["assignment_id"]
            answer = {"choice": self.rng.choice(("first", "second")), "strength": 2,
                      "milliseconds": self.rng.randint(2000, 9000)}
            return self.send("POST", f"/api/assignments/{self.assignment_id}/judgement/", json.dumps(answer).encode())
        if self.started >= measure_from:
            result["submit_ms"].append((finished - self.started) * 1000)
        if status == 201 or (status == 409 and json.loads(payload).get("code") == "already_submitted"):
            result["acknowledged"].append(self.assignment_id)
            if measure_from <= finished <= deadline:  # counted per slice of the measured time
                result["by_slice"][int((finished - measure_from) / SLICE_SECONDS)] += 1
            result["after_warmup"] += measure_from <= finished
        else:
            result["errors"][f"submit {status}"] += 1
        return self.start() if finished < deadline else self.stop()

    def stop(self) -> None:
        self.close()
        self.done = True


def client_process(port: int, campaign: str, tokens: list[str], warmup: float, seconds: float, seed: int, ready,
                   results) -> None:
    result = {"next_ms": [], "submit_ms": [], "acknowledged": [], "by_slice": Counter(), "after_warmup": 0,
              "errors": Counter(), "stopped": Counter()}
    selector = selectors.DefaultSelector()
    ready.wait()
    measure_from = time.monotonic() + warmup
    labelers = [
        Labeler(port=port, token=token, campaign=campaign, rng=random.Random(seed * 100_000 + number),
                window=(measure_from, measure_from + seconds), result=result, selector=selector)
        for number, token in enumerate(tokens)
    ]
    for labeler in labelers:
        labeler.start()
    cpu_started = None
    while not all(labeler.done for labeler in labelers):
        if cpu_started is None and time.monotonic() >= measure_from:
            cpu_started = time.process_time()
        for key, mask in selector.select(timeout=0.1):
            labeler = key.data
            try:
                labeler.on_event(mask)
            except (OSError, ValueError, RuntimeError) as error:  # counted, and the labeler goes on
                result["errors"][f"{labeler.method} {type(error).__name__}"] += 1
                labeler.close()
                labeler.start() if time.monotonic() < labeler.window[1] else labeler.stop()
    result["cpu_seconds"] = time.process_time() - (cpu_started or time.process_time())
    results.put(result)


# ---------------------------------------------------------------- measuring

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


def postgres_backends(config: BenchConfig) -> list[int]:
    """Process ids of the PostgreSQL backends connected to the benchmark's database (not other people's)."""
    import psycopg

    with psycopg.connect(f"{config.postgres}/postgres", autocommit=True) as connection:
        rows = connection.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [config.database])
        return [pid for (pid,) in rows]


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


def database_check(campaign_name: str, acknowledged: list[int], since) -> dict:
    """Every acknowledged judgement stored exactly once and charged exactly once; nothing stored unacknowledged.
    Looks at the judgements made since the run started (the seeded history is not the run's)."""
    from django.db.models import Count

    from annotator.models import Judgement, LedgerCategory, LedgerEntry

    run_judgements = Judgement.objects.filter(assignment__comparison__campaign__name=campaign_name,
                                              created_at__gte=since)
    stored = list(run_judgements.values_list("assignment_id", flat=True))
    stored_set, acknowledged_set = set(stored), set(acknowledged)
    charges = Counter(LedgerEntry.objects.filter(campaign__name=campaign_name, category=LedgerCategory.LABELING,
                                                 created_at__gte=since).values_list("assignment_id", flat=True))
    per_pair = (run_judgements.values("assignment__comparison", "assignment__labeler")
                .annotate(n=Count("pk")).filter(n__gt=1))
    return {
        "acknowledged": len(acknowledged),
        "acknowledged_twice": len(acknowledged) - len(acknowledged_set),
        "stored": len(stored),
        "lost": len(acknowledged_set - stored_set),
        "stored_unacknowledged": len(stored_set - acknowledged_set),
        "duplicated": len(stored) - len(stored_set) + per_pair.count(),
        "charged_not_once": sum(1 for a in stored_set if charges.get(a) != 1) + len(set(charges) - stored_set),
    }


def check_failed(check: dict) -> bool:
    return bool(check["lost"] or check["duplicated"] or check["stored_unacknowledged"] or check["charged_not_once"])


def profile_summary(profile_dir: str) -> None:
    import pstats

    files = sorted(Path(profile_dir).glob("worker-*.prof"))
    if not files:
        print("no profiles were written")
        return
    stats = pstats.Stats(str(files[0]))
    for path in files[1:]:
        stats.add(str(path))
    stats.strip_dirs().sort_stats("cumulative").print_stats(35)
    stats.sort_stats("tottime").print_stats(20)


def claim_critical_section(campaign_name: str, count: int) -> dict:
    """Time `count` claims made one after another through the service, each followed by its submit.

    A claim holds the campaign's row lock for its whole transaction, so claims in a campaign are serial: 1000 / (claim ms) is a ceiling on judgements per second, however many cores.
    """
    from django.contrib.auth import get_user_model

    from annotator.models import Campaign
    from annotator.services.assignments import assignment_claim
    from annotator.services.judgements import judgement_submit

    campaign = Campaign.objects.get(name=campaign_name)
    labelers = list(get_user_model().objects.filter(username__startswith="bench-").order_by("username"))
    claim_ms, submit_ms = [], []
    for number in range(count):
        labeler = labelers[number % len(labelers)]
        started = time.perf_counter()
        assignment = assignment_claim(labeler=labeler, campaign=campaign)
        claimed = time.perf_counter()
        judgement_submit(labeler=labeler, assignment_id=assignment.pk, choice="a", milliseconds=3000)
        claim_ms.append((claimed - started) * 1000)
        submit_ms.append((time.perf_counter() - claimed) * 1000)
    claim_p50 = percentile(claim_ms, 0.5)
    return {
        "claims": count,
        "claim_p50_ms": round(claim_p50, 2),
        "submit_p50_ms": round(percentile(submit_ms, 0.5), 2),
        "claims_per_second_ceiling": round(1000 / claim_p50, 1),
    }


def explain_claim(campaign_name: str) -> None:
    """The claim statement (money check and lease write) as `annotator_claim` runs it after the campaign lock,
    for one of the labelers (rolled back)."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from annotator.models import Campaign
    from annotator.services.assignments import claim_sql, claim_sql_params

    campaign = Campaign.objects.get(name=campaign_name)
    labeler = get_user_model().objects.get(username="bench-001")
    now = timezone.now()
    params = claim_sql_params(campaign=campaign.pk, labeler=labeler.pk, swapped=False, now=now, until=now, reserved=0)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + claim_sql(), params)
        print("\n".join(row[0] for row in cursor.fetchall()))
        transaction.set_rollback(True)


def in_process_cost(campaign_name: str, count: int) -> dict:
    """CPU per judgement with no HTTP and no concurrency: `count` next -> submit cycles through the WSGI
    application (middleware, DRF, services, psycopg) in this one thread, split into this process's CPU and its
    PostgreSQL backend's. What remains of a benchmark run's CPU per judgement is the server, the clients and
    the cost of running many processes on few cores."""
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from config.wsgi import application

    keys = list(Token.objects.filter(user__username__startswith="bench-").values_list("key", flat=True))

    def call(method: str, path: str, key: str, body: bytes = b"") -> tuple[str, bytes]:
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/json",
            "HTTP_AUTHORIZATION": f"Token {key}", "HTTP_ACCEPT": "application/json",
        }
        status = []
        payload = b"".join(application(environ, lambda line, headers, info=None: status.append(line)))
        return status[0], payload

    def cycle(number: int) -> None:
        key = keys[number % len(keys)]
        status, payload = call("GET", f"/api/campaigns/{campaign_name}/next/", key)
        assert status.startswith("200"), (status, payload)
        answer = json.dumps({"choice": "first", "milliseconds": 3000}).encode()
        status, payload = call("POST", f"/api/assignments/{json.loads(payload)['assignment_id']}/judgement/", key, answer)
        assert status.startswith("201"), (status, payload)

    for number in range(min(count, 100)):  # warm: imports, prepared statements
        cycle(number)
    backend = [connection.connection.info.backend_pid]
    python_before, postgres_before, started = time.process_time(), cpu_seconds_of(backend), time.perf_counter()
    for number in range(count):
        cycle(number)
    python, postgres = time.process_time() - python_before, cpu_seconds_of(backend) - postgres_before
    return {
        "judgements": count,
        "python_cpu_ms_per_judgement": round(python * 1000 / count, 2),
        "postgres_cpu_ms_per_judgement": round(postgres * 1000 / count, 2),
        "wall_ms_per_judgement": round((time.perf_counter() - started) * 1000 / count, 2),
    }


# ---------------------------------------------------------------- the run

def run(config: BenchConfig) -> dict:
    speed_before = reference_loop_ms()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, load average before {os.getloadavg()[0]:.2f}, "
          f"reference loop {speed_before:.0f} ms; config: {asdict(config)}", flush=True)
    started = time.monotonic()
    database_recreate(config)
    django_setup(config)
    from django.utils import timezone

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

    next_ms = [value for outcome in outcomes for value in outcome["next_ms"]]
    submit_ms = [value for outcome in outcomes for value in outcome["submit_ms"]]
    acknowledged = [value for outcome in outcomes for value in outcome["acknowledged"]]
    errors = sum((outcome["errors"] for outcome in outcomes), Counter())
    stopped = sum((outcome["stopped"] for outcome in outcomes), Counter())
    check = database_check(campaign, acknowledged, since=run_started)
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
    summary = {
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
            "whole_machine": round(busy_after - busy_before, 1),
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
    if config.critical_section:
        summary["critical_section"] = claim_critical_section(campaign, config.critical_section)
    if config.in_process:
        summary["in_process"] = in_process_cost(campaign, config.in_process)
    print(json.dumps(summary, indent=2), flush=True)
    if profile_dir:
        profile_summary(profile_dir)
        explain_claim(campaign)
    print("database check: " + ("FAILED" if check_failed(check) else
                                "every acknowledged judgement stored and charged exactly once"))
    return summary


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for option in fields(BenchConfig):
        flag, description = "--" + option.name.replace("_", "-"), option.metadata["help"]
        if isinstance(option.default, bool):
            parser.add_argument(flag, action="store_true", help=description)
        else:
            parser.add_argument(flag, type=type(option.default), default=option.default,
                                help=f"{description} (default {option.default})")
    config = BenchConfig(**vars(parser.parse_args(argv)))
    os.chdir(REPO)  # Celery's loader puts the working directory first on sys.path
    summary = run(config)
    sys.exit(1 if check_failed(summary["database_check"]) else 0)


if __name__ == "__main__":
    main()
