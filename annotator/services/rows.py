"""Rows on the labeling hot path, read and written without the ORM's query compiler.

Compiling one ORM query costs about a millisecond of CPU, and a next-item or submit request runs several;
at hundreds of requests a second that was most of the server's time. So the hot path's statements are SQL
built once, and their rows come back as ordinary model instances (`Model.from_db`, as the ORM builds them).
Everything else in the project uses the ORM.
"""

from functools import cache

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model

from annotator.models import AssignmentStatus

# Status names go into the hot path's SQL as literals, not parameters: a prepared statement's generic plan
# can only use a partial index (`assignment_leased`: WHERE status = 'leased') whose condition it can see.
LEASED = f"'{AssignmentStatus.LEASED.value}'"
SUBMITTED = f"'{AssignmentStatus.SUBMITTED.value}'"


@cache
def _fields(model: type[Model], only: tuple[str, ...] | None) -> tuple:
    """The model's concrete fields, or those named in `only` (attnames), in the model's order."""
    if only is None:
        return tuple(model._meta.concrete_fields)
    unknown = set(only) - {field.attname for field in model._meta.concrete_fields}
    if unknown:
        raise ValueError(f"{model.__name__} has no fields {sorted(unknown)}")
    return tuple(field for field in model._meta.concrete_fields if field.attname in only)


def columns(model: type[Model], alias: str, only: tuple[str, ...] | None = None) -> str:
    """`alias.column, ...` for every concrete field of the model (or those in `only`), in `attnames` order."""
    return ", ".join(f"{alias}.{field.column}" for field in _fields(model, only))


@cache
def attnames(model: type[Model], only: tuple[str, ...] | None = None) -> tuple[str, ...]:
    return tuple(field.attname for field in _fields(model, only))


@cache
def _converters(model: type[Model], only: tuple[str, ...] | None) -> tuple:
    """(position, converters, column) for each field whose raw database value needs converting, as the ORM
    converts it: JSON text to objects, and on SQLite numbers to Decimal, text to datetimes, 0/1 to booleans.
    (A process talks to one kind of database, so the first answer holds.)"""
    found = []
    for position, field in enumerate(_fields(model, only)):
        column = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if converters:
            found.append((position, converters, column))
    return tuple(found)


def instance_from_row(model: type[Model], row, only: tuple[str, ...] | None = None) -> Model:
    """A model instance from the first len(attnames(model, only)) values of a row selected with
    `columns(model, .., only)`. Fields left out of `only` are deferred, as `QuerySet.only()` leaves them: reading
    one costs a query, so the hot path names what it reads."""
    names = attnames(model, only)
    values = list(row[: len(names)])
    if converting := _converters(model, only):
        db = connections[DEFAULT_DB_ALIAS]  # looked up once: each `connection.x` is a context-local lookup
        for position, converters, column in converting:
            for convert in converters:
                values[position] = convert(values[position], column, db)
    return model.from_db(DEFAULT_DB_ALIAS, names, values)


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


def mark_saved(objects: list[Model], keys) -> None:
    """Mark instances inserted with `insert_statement` (or by a server function) as saved, with their keys."""
    for obj, (key,) in zip(objects, keys, strict=True):
        obj.pk = key
        obj._state.adding, obj._state.db = False, connection.alias
