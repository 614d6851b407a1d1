#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    if sys.argv[1:] == ["dbserver", "stop"] and not os.environ.get("DATABASE_URL"):
        # Before Django: its settings would start the embedded server only to stop it.
        from config.database import embedded_data_dir, embedded_server_stop

        stopped = embedded_server_stop()
        print(f"{'Stopped the' if stopped else 'No'} embedded PostgreSQL {'in' if stopped else 'runs in'} {embedded_data_dir()}.")
        sys.exit(0)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
