"""Rows on the labeling hot path, read and written without the ORM's query compiler.

Compiling one ORM query costs about a millisecond of CPU, and a next-item or submit request runs several;
at hundreds of requests a second that was most of the server's time. So the hot path's statements are SQL
built once, and their rows come back as ordinary model instances (`Model.from_db`, as the ORM builds them).
Everything else in the project uses the ORM.
"""

from collections.abc import Callable
from contextlib import contextmanager, suppress
from functools import cache

import psycopg

from django.db import connection, transaction
from django.db.models import Model

from annotator.models import AssignmentStatus

# Status names go into the hot path's SQL as literals, not parameters: a prepared statement's generic plan
# can only use a partial index (`assignment_leased`: WHERE status = 'leased') whose condition it can see.
LEASED = f"'{AssignmentStatus.LEASED.value}'"
SUBMITTED = f"'{AssignmentStatus.SUBMITTED.value}'"


def columns(model: type[Model], alias: str) -> str:
    """`alias.column, ...` for every concrete field of the model, in `attnames(model)` order."""
    return ", ".join(f"{alias}.{field.column}" for field in model._meta.concrete_fields)


@cache
def attnames(model: type[Model]) -> tuple[str, ...]:
    return tuple(field.attname for field in model._meta.concrete_fields)


@cache
def _converters(model: type[Model], vendor: str) -> tuple:
    """(position, converters, column) for each field whose raw database value needs converting, as the ORM
    converts it: JSON text to objects, and on SQLite numbers to Decimal, text to datetimes, 0/1 to booleans."""
    found = []
    for position, field in enumerate(model._meta.concrete_fields):
        column = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if converters:
            found.append((position, converters, column))
    return tuple(found)


def instance_from_row(model: type[Model], row) -> Model:
    """A model instance from the first len(attnames(model)) values of a row selected with `columns(model, ..)`."""
    names = attnames(model)
    values = list(row[: len(names)])
    for position, converters, column in _converters(model, connection.vendor):
        for convert in converters:
            values[position] = convert(values[position], column, connection)
    return model.from_db(connection.alias, names, values)


def row_lock(*clauses: str) -> str:
    """Locking clauses such as `FOR UPDATE OF a` on PostgreSQL; nothing on SQLite (first runs only), which
    takes its write lock at BEGIN (see config.settings), so writers there are serial anyway."""
    if not connection.features.has_select_for_update:
        return ""
    return " " + " ".join(clauses)


@cache
def _insert_sql(model: type[Model], count: int) -> tuple[tuple, str]:
    fields = tuple(field for field in model._meta.concrete_fields if not field.primary_key)
    quote = connection.ops.quote_name
    one_row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "
        f"VALUES {', '.join([one_row] * count)} RETURNING {quote(model._meta.pk.column)}"
    )
    return fields, sql


def insert_statement(objects: list[Model]) -> tuple[str, list]:
    """(sql, params) of one INSERT of unsaved instances of one model, RETURNING their primary keys; defaults and
    `auto_now_add` are filled in on the instances as `bulk_create` does."""
    fields, sql = _insert_sql(type(objects[0]), len(objects))
    return sql, [field.get_db_prep_save(field.pre_save(obj, add=True), connection) for obj in objects for field in fields]


def _mark_saved(objects: list[Model], keys) -> None:
    for obj, (key,) in zip(objects, keys, strict=True):
        obj.pk = key
        obj._state.adding, obj._state.db = False, connection.alias


def writes_run(inserted: list[Model], *statements: tuple[str, list]) -> Callable[[], None]:
    """INSERT `inserted` (unsaved instances of one model), then run `statements` (INSERTs and UPDATEs with %s
    parameters), in one statement on PostgreSQL and one by one elsewhere. Returns `saved`, which sets the
    inserted instances' keys: call it after the transaction's block, so that inside `pipelined_atomic` the
    writes travel with the COMMIT instead of costing a round trip of their own.

    On PostgreSQL they go as a single statement of data-modifying CTEs: one snapshot, so no statement may
    depend on another's writes, and no two may write the same row. Each runs exactly once either way.
    """
    first_sql, first_params = insert_statement(inserted)
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(first_sql, first_params)
            _mark_saved(inserted, cursor.fetchall())
            for sql, params in statements:
                cursor.execute(sql, params)
        return lambda: None
    parts = [f"w0 AS ({first_sql})"] + [f"w{n} AS ({sql})" for n, (sql, _) in enumerate(statements, start=1)]
    cursor = connection.cursor()
    cursor.execute(
        f"WITH {', '.join(parts)} SELECT * FROM w0", first_params + [value for _, params in statements for value in params]
    )

    def saved() -> None:
        with cursor:
            _mark_saved(inserted, cursor.fetchall())

    return saved


@contextmanager
def pipelined_atomic():
    """A transaction, on PostgreSQL sent through a psycopg pipeline: `transaction.atomic()` elsewhere.

    In the pipeline a statement is sent when executed, but the client waits only when it reads a result, and
    BEGIN goes with the first statement and COMMIT with every statement whose result was not read yet. So a
    transaction that reads first and writes last costs two round trips however many statements it runs, and
    the locks it takes are never held across a wait for the network or for a core. Each statement still sees
    what committed before it started (its own snapshot), so a lock taken by one holds for the next. Read the
    results of the last statements after the block.

    BEGIN and COMMIT are statements in the pipeline, not Django's atomic(): psycopg would wait on BEGIN (and
    on its autocommit switch) by itself. So the block must not open atomic() of its own. Inside an outer
    transaction (tests) it is a savepoint, as atomic() would make.
    """
    if connection.vendor != "postgresql":
        with transaction.atomic():
            yield
        return
    if connection.in_atomic_block:
        with transaction.atomic(), connection.wrap_database_errors, connection.connection.pipeline():
            yield
        return
    connection.ensure_connection()
    try:
        # Errors surface when the pipeline syncs, outside Django's cursor: wrapped here as Django's own.
        with connection.wrap_database_errors, connection.cursor() as cursor, connection.connection.pipeline():
            cursor.execute("BEGIN")
            yield
            cursor.execute("COMMIT")
    except BaseException:
        with suppress(psycopg.Error):  # a broken connection: the original error says more, and Django drops it
            connection.connection.rollback()  # after the pipeline's sync: ends what BEGIN opened, if still open
        raise


def transaction_in_one_round_trip(*statements: tuple[str, list | dict]) -> list[tuple]:
    """Run `statements` in one transaction and return the last one's rows: on PostgreSQL in one round trip
    (`pipelined_atomic`), so no statement's parameters may depend on an earlier one's result."""
    cursors = [connection.cursor() for _ in statements]
    try:
        with pipelined_atomic():
            for cursor, (sql, params) in zip(cursors, statements):
                cursor.execute(sql, params)
        return cursors[-1].fetchall()
    finally:
        for cursor in cursors:
            cursor.close()
