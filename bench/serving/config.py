"""The benchmark's options (one dataclass, also its command line) and the environment its processes run in."""

import argparse
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
PYTHON = sys.executable
CAMPAIGN = "serving-bench"  # the one campaign the benchmark seeds and its labelers work on
LABELER_PREFIX = "bench"  # the labelers' accounts: bench-001, bench-002, ...


def option(default, description: str):
    return field(default=default, metadata={"help": description})


@dataclass
class BenchConfig:
    labelers: int = option(50, "simulated labelers working at once, one connection each")
    seconds: float = option(20.0, "how long they are measured")
    warmup: float = option(3.0, "seconds of work before measuring (first requests import code, open connections)")
    client_processes: int = option(2, "processes the labelers are spread over")
    workers: int = option((os.cpu_count() or 1) + 1, "gunicorn worker processes")
    threads: int = option(1, "threads per gunicorn worker (gthread only)")
    worker_class: str = option(
        "sync", "gunicorn worker class: sync (as deployed: one request per connection, behind a proxy) or gthread "
        "(keep-alive connections shared by each worker's threads)")
    items: int = option(60_000, "comparisons in the campaign")
    history: int = option(20_000, "of those, how many (at the head of the queue) were already judged and paid")
    overlap: int = option(2, "judgements wanted per comparison")
    database: str = option("rlhf_bench", "database to drop, create and use")
    postgres: str = option("postgres://postgres@127.0.0.1:5432", "PostgreSQL server URL, without a database")
    profile: bool = option(False, "profile the gunicorn workers and EXPLAIN the claim statement")
    critical_section: int = option(0, "also time this many serial in-process claims (no HTTP)")
    in_process: int = option(0, "also measure CPU per judgement over this many next -> submit cycles in-process "
                                "(no HTTP, one thread)")
    seed: int = option(0, "seeds the labelers' random answers")
    tree: str = option("", "serve the code of another checkout (a git worktree of an older commit): a side by side "
                           "with the same clients, database and seeding")


def config_from_arguments(argv: list[str] | None, description: str) -> BenchConfig:
    """One command-line flag per BenchConfig field (`--client-processes` for `client_processes`)."""
    parser = argparse.ArgumentParser(description=description)
    for setting in fields(BenchConfig):
        flag, help_text = "--" + setting.name.replace("_", "-"), setting.metadata["help"]
        if isinstance(setting.default, bool):
            parser.add_argument(flag, action="store_true", help=help_text)
        else:
            parser.add_argument(flag, type=type(setting.default), default=setting.default,
                                help=f"{help_text} (default {setting.default})")
    return BenchConfig(**vars(parser.parse_args(argv)))


def served_tree(config: BenchConfig) -> Path:
    """The checkout whose site is measured: this one, or `--tree`'s. It also migrates the database, so the server
    functions are its own; the seeding (this checkout's models) needs the two to share the seeded tables."""
    return Path(config.tree).resolve() if config.tree else REPO


def database_url(config: BenchConfig) -> str:
    return f"{config.postgres}/{config.database}"


def server_environment(config: BenchConfig) -> dict[str, str]:
    """The environment of every process that runs the site's code: the benchmark's database, no debug."""
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
