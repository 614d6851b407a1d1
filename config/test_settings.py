"""Settings for the test suite: always PostgreSQL and Redis (the real parts), never a model download."""

import os

from config.database import embedded_database_url, reachable

# DATABASE_URL or TEST_DATABASE_URL, else the machine's PostgreSQL on 127.0.0.1:5432 (CI), else the embedded
# server. Set in the environment, so the processes the tests start (a Celery worker, gunicorn) use the same one.
if not os.environ.get("DATABASE_URL"):
    os.environ["DATABASE_URL"] = os.environ.get("TEST_DATABASE_URL") or (
        "postgres://postgres@127.0.0.1:5432/rlhf" if reachable("127.0.0.1", 5432) else embedded_database_url()
    )
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from config.settings import *  # noqa: E402,F403

# Tests choose per test whether tasks go through the real broker (tests/worker) or run in-process.
CELERY_BROKER_URL = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
# A real worker started by tests/worker sets CELERY_TASK_ALWAYS_EAGER=0 so it sends the next steps to the broker.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", True)  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405  (threads in concurrency tests each open their own)
# One test database per run, so two runs on one server never drop each other's.
DATABASES["default"]["TEST"] = {"NAME": f"test_rlhf_{os.getpid()}"}  # noqa: F405
