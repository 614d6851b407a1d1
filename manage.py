#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    if sys.argv[1:] == ["dbserver", "stop"] and not os.environ.get("DATABASE_URL"):
        # Before Django: its settings would start the embedded server only to stop it.
        from config.database import embedded_server_stop

        print(embedded_server_stop())
        sys.exit(0)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
