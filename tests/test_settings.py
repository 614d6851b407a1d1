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
from django.db import connection
from config.celery import app
app.connection_for_write()._info()
with connection.cursor() as cursor:
    cursor.execute("SELECT current_setting('server_version_num')::int / 10000")
    major = cursor.fetchone()[0]
print(json.dumps({"engine": settings.DATABASES["default"]["ENGINE"], "host": settings.DATABASES["default"]["OPTIONS"]["host"],
                  "major": major, "eager": settings.CELERY_TASK_ALWAYS_EAGER}))
"""


def _run(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_an_empty_database_url_means_the_embedded_postgresql_and_the_in_process_broker(tmp_path):
    """A first run (DATABASE_URL empty) starts PostgreSQL 18 from the pip package, in its own data folder; a second
    process reuses it; `manage.py dbserver stop` stops it."""
    data_dir = tmp_path / "postgres"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "1", "DATABASE_URL": "",
           "EMBEDDED_POSTGRES_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    env.pop("CELERY_BROKER_URL", None)
    try:
        first = _run("-c", SCRIPT, env=env)
        assert first.returncode == 0, first.stderr[-3000:]
        found = json.loads(first.stdout.strip().splitlines()[-1])
        assert found == {"engine": "django.db.backends.postgresql", "host": str(data_dir), "major": 18, "eager": True}
        assert "No hostname" not in first.stderr
        server_pid = (data_dir / "postmaster.pid").read_text().split()[0]

        second = _run("manage.py", "dbserver", "status", env=env)
        assert second.returncode == 0, second.stderr[-3000:]
        assert "embedded PostgreSQL" in second.stdout
        assert (data_dir / "postmaster.pid").read_text().split()[0] == server_pid  # reused, not restarted
    finally:
        stopped = _run("manage.py", "dbserver", "stop", env=env)
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert "Stopped" in stopped.stdout
    assert not (data_dir / "postmaster.pid").exists()
