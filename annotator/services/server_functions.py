"""The labeling transactions that PostgreSQL runs as functions of its own: a claim, and an answer.

Each is a short transaction of several statements where a later one must see what an earlier one waited for
(take a lock, then read with a snapshot taken after it). Sent from Python, that is BEGIN, the statements and
COMMIT: several statements to parse, bind and run, and the driver's work for each. As a PL/pgSQL function it is
one statement for the web server, one round trip, and plans PostgreSQL keeps for the connection. The
statements themselves are the services' own SQL, built from the models:
- `annotator_claim` (annotator.services.assignments): the campaign lock, then the claim statement;
- `annotator_answer` (annotator.services.judgements): lock the assignment and its campaign, check, store.

They are (re)installed after every `migrate`, so the database always runs the SQL of the code that migrated
it; deploy code and `migrate` together, as for any schema change. SQLite (first runs only) needs none of this:
the services run the same steps there one by one.
"""

from django.db import connections

from annotator.services.assignments import claim_function_sql
from annotator.services.judgements import answer_function_sql


def server_functions_sql() -> list[str]:
    return [claim_function_sql(), answer_function_sql()]


def server_functions_install(*, using: str = "default") -> None:
    """CREATE OR REPLACE the labeling functions on a PostgreSQL database (nothing elsewhere)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for sql in server_functions_sql():
            cursor.execute(sql)
