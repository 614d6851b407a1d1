"""The in-process probes, through the site's own code with no HTTP: `--critical-section` (serial claims),
`--in-process` (CPU per judgement through the WSGI application) and the plans of one claim (`--profile`).

Imported once Django is set up: it uses the models and the services.
"""

import io
import json
import time

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from rest_framework.authtoken.models import Token

from annotator.models import Campaign
from annotator.services.assignments import assignment_claim
from annotator.services.judgements import judgement_submit
from bench.serving.config import LABELER_PREFIX
from bench.serving.measurement import cpu_seconds_of, percentile
from config.wsgi import application


def claim_critical_section(campaign_name: str, count: int) -> dict:
    """Time `count` claims made one after another through the service, each followed by its submit.

    A claim holds the campaign's row lock for its whole transaction, so claims in a campaign are serial:
    1000 / (claim ms) is a ceiling on judgements per second, however many cores.
    """
    campaign = Campaign.objects.get(name=campaign_name)
    labelers = list(get_user_model().objects.filter(username__startswith=f"{LABELER_PREFIX}-").order_by("username"))
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


def in_process_cost(campaign_name: str, count: int) -> dict:
    """CPU per judgement with no HTTP and no concurrency: `count` next -> submit cycles through the WSGI
    application (middleware, DRF, services, psycopg) in this one thread, split into this process's CPU and its
    PostgreSQL backend's. What remains of a benchmark run's CPU per judgement is the server, the clients and
    the cost of running many processes on few cores."""
    keys = list(Token.objects.filter(user__username__startswith=f"{LABELER_PREFIX}-").values_list("key", flat=True))

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
        assignment_id = json.loads(payload)["assignment_id"]
        status, payload = call("POST", f"/api/assignments/{assignment_id}/judgement/", key, answer)
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


# auto_explain logs the plan of every statement, nested ones too (those `annotator_claim` runs), with their
# actual rows and buffers; at client_min_messages = log the log lines come to this connection as notices.
# LOAD needs a superuser, which the benchmark's `postgres` user is.
AUTO_EXPLAIN = [
    "LOAD 'auto_explain'",
    "SET LOCAL auto_explain.log_min_duration = 0",
    "SET LOCAL auto_explain.log_nested_statements = on",
    "SET LOCAL auto_explain.log_analyze = on",
    "SET LOCAL auto_explain.log_buffers = on",
    "SET LOCAL client_min_messages = log",
]


def explain_claim(campaign_name: str) -> None:
    """The plans of one claim through the public service (`assignment_claim`) for one of the labelers, as
    PostgreSQL runs them inside `annotator_claim` after the campaign lock (rolled back)."""
    campaign = Campaign.objects.get(name=campaign_name)
    labeler = get_user_model().objects.get(username=f"{LABELER_PREFIX}-001")
    plans: list[str] = []

    def keep(notice) -> None:
        plans.append(notice.message_primary)

    with transaction.atomic():
        with connection.cursor() as cursor:
            for statement in AUTO_EXPLAIN:
                cursor.execute(statement)
        connection.connection.add_notice_handler(keep)
        try:
            assignment_claim(labeler=labeler, campaign=campaign)
        finally:
            connection.connection.remove_notice_handler(keep)
        transaction.set_rollback(True)
    print("\n\n".join(plans))
