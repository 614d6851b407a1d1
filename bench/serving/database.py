"""The benchmark's own database: claimed by name, dropped, created and migrated; Django set up on it."""

import os
import subprocess
import sys

import psycopg

from bench.serving.config import PYTHON, BenchConfig, served_tree, server_environment

# Connections that hold this process's claim on its benchmark database until the process exits.
database_claims: list[psycopg.Connection] = []


def database_recreate(config: BenchConfig) -> None:
    """Drop and recreate the benchmark's database, and migrate it with the served tree's code. A second run on the same database would drop
    it under the first (whose judgements would then all read as lost), so each run first claims the name with a
    PostgreSQL advisory lock, held until its process exits, and a run that cannot claim it stops here."""
    connection = psycopg.connect(f"{config.postgres}/postgres", autocommit=True)
    [(claimed,)] = connection.execute(
        "SELECT pg_try_advisory_lock(hashtext(%s))", [f"bench database {config.database}"]
    ).fetchall()
    if not claimed:
        connection.close()
        sys.exit(f"Database {config.database} is in use by another benchmark run: wait for it to end, or pass "
                 "--database with another name.")
    database_claims.append(connection)
    connection.execute(f'DROP DATABASE IF EXISTS "{config.database}" WITH (FORCE)')  # a crashed run's sessions
    connection.execute(f'CREATE DATABASE "{config.database}"')
    tree = served_tree(config)
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=tree,
                   env=server_environment(config) | {"PYTHONPATH": str(tree)}, check=True)


def django_setup(config: BenchConfig) -> None:
    """Django in this process, on the benchmark's database. The caller has put the code to run on sys.path."""
    os.environ.update({k: v for k, v in server_environment(config).items() if k != "PYTHONPATH"})
    import django

    django.setup()

