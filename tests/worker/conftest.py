"""Round tests on real parts: the word-writing tiny base model (tests/conftest.py), a
real Celery worker process on Redis, the pytest-django test database, and a tiny campaign."""

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.worker.round_settings import TINY_ROUND_SETTINGS

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).parent / "celery")
BROKER_URL = "redis://127.0.0.1:6379/15"
WORKER_START_SECONDS = 90


@pytest.fixture
def artifact_dir(tmp_path, settings) -> Path:
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    return settings.ARTIFACT_DIR


@pytest.fixture
def tiny_campaign(db, word_policy_dir):
    from annotator.models import Campaign, PolicyOptimizer
    from annotator.services.prompts import campaign_prompts_from_plays

    campaign = Campaign.objects.create(
        name="tiny-rlhf", title="Tiny RLHF", instructions="Pick the happier continuation.", overlap=1,
        pay_per_judgement=Decimal("0.01"), money_budget=Decimal("20.00"), gpu_hour_budget=Decimal("1"),
        base_model_path=str(word_policy_dir), gold_labeler="vader", policy_optimizer=PolicyOptimizer.RL,
        acquisition_strategy="disagreement", settings=TINY_ROUND_SETTINGS,
    )
    campaign_prompts_from_plays(campaign=campaign)
    return campaign


def _database_url(database_name: str) -> str:
    """The server the tests use (config.test_settings put it in DATABASE_URL: the machine's or the embedded one),
    with the test database's name."""
    return urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{database_name}").geturl()


class WorkerProcess:
    """`celery -A config worker -Q gpu,default --concurrency 1 --pool solo` on the test database."""

    def __init__(self, *, database_name: str, artifact_dir: Path, log_path: Path):
        self.log_path = log_path
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.test_settings",
            "DATABASE_URL": _database_url(database_name),
            "CELERY_BROKER_URL": BROKER_URL,
            "TEST_CELERY_BROKER_URL": BROKER_URL,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "ARTIFACT_DIR": str(artifact_dir),
            "HF_HUB_OFFLINE": "1",
        }
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(
            [CELERY, "-A", "config", "worker", "-Q", "gpu,default", "--concurrency", "1", "--pool", "solo",
             "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--hostname", f"rounds-test-{os.getpid()}@%h"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + WORKER_START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"The Celery worker exited at start:\n{self.log_tail()}")
            if " ready." in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.3)
        raise RuntimeError(f"The Celery worker did not start in {WORKER_START_SECONDS} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no cleanup, no acknowledgement, like a machine that dies."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def _purge_broker() -> None:
    import redis

    client = redis.Redis.from_url(BROKER_URL)
    client.delete("gpu", "default", "unacked", "unacked_index")


@pytest.fixture
def start_worker(transactional_db, settings, artifact_dir, tmp_path):
    """Starts real worker processes on the test database; the test process sends tasks to the broker."""
    from config.celery import app

    _purge_broker()
    app.conf.task_always_eager = False
    database_name = settings.DATABASES["default"]["NAME"]
    workers: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        worker = WorkerProcess(database_name=database_name, artifact_dir=artifact_dir,
                               log_path=tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    app.conf.task_always_eager = True
    _purge_broker()
