"""Settings for the test suite: always PostgreSQL and Redis (the real parts), never a model download."""

import os

os.environ.setdefault("DATABASE_URL", os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rlhf"))
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
