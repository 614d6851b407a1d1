"""Settings read from the environment as a first run sets it: nothing, or variables set to nothing."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, logging
logging.basicConfig()
import django
django.setup()
from django.conf import settings
from config.celery import app
app.connection_for_write()._info()
print(json.dumps({"engine": settings.DATABASES["default"]["ENGINE"], "eager": settings.CELERY_TASK_ALWAYS_EAGER}))
"""


def test_an_empty_database_url_means_sqlite_and_the_in_process_broker_raises_no_warning():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "1", "DATABASE_URL": "",
           "PYTHONPATH": str(ROOT)}
    env.pop("CELERY_BROKER_URL", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"engine": "django.db.backends.sqlite3", "eager": True}
    assert "No hostname" not in done.stderr
