"""The labeling hot path's SQL: the functions PostgreSQL runs, kept as .sql files a reader can open, and the one
helper that reads the hot path's rows.

- rules.sql: the labeling rules, each defined once (a live lease, a held slot, the budget check, spent, reserved);
- rows.py: the one helper that cuts the hot path's rows into model instances;
- claim.sql: `annotator_claim`, the next item for a labeler (annotator.services.assignments);
- answer.sql: `annotator_answer`, an answer stored, charged and counted (annotator.services.judgements).

Why functions: a labeling transaction is several statements where a later one must see what an earlier one waited
for (take a lock, then read). Sent from Python that is BEGIN, the statements and COMMIT; as a PL/pgSQL function it is
one statement and one round trip for the web server, with plans PostgreSQL keeps for the connection, and the locks
are held only while PostgreSQL works.

They are (re)installed after every `migrate` (annotator.apps), so the database always runs the SQL of the code that
migrated it: deploy code and `migrate` together, as for any schema change.
"""

from pathlib import Path

from django.db import connections

SQL_DIR = Path(__file__).resolve().parent
FILES = ("rules.sql", "claim.sql", "answer.sql")  # in dependency order


def server_functions_install(*, using: str = "default") -> None:
    """Create or replace the labeling functions."""
    with connections[using].cursor() as cursor:
        for name in FILES:
            cursor.execute((SQL_DIR / name).read_text())
