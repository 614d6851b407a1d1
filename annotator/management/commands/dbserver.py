"""The embedded PostgreSQL server (used when DATABASE_URL is unset): status, start, stop.

`manage.py dbserver stop` is answered by manage.py itself before Django starts (settings would start the server);
this command answers it when called through `call_command`."""

import os

import dj_database_url
from django.core.management.base import BaseCommand, CommandError

from config.database import describe, embedded_database_url, embedded_server_stop


class Command(BaseCommand):
    help = "Show, start or stop the embedded PostgreSQL server that runs when DATABASE_URL is unset."
    requires_system_checks = []  # it manages the server; nothing it does depends on the project's checks

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "start", "stop"], nargs="?", default="status")

    def handle(self, *args, action: str, **options):
        if os.environ.get("DATABASE_URL"):
            raise CommandError("DATABASE_URL is set: this project uses that server, not an embedded one.")
        if action == "stop":
            self.stdout.write(embedded_server_stop())
            return
        self.stdout.write(f"Running: {describe(dj_database_url.parse(embedded_database_url()))}")
