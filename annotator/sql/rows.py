"""Rows on the labeling hot path, read without the ORM's query compiler.

Compiling one ORM query costs about a millisecond of CPU, and a next-item or submit request runs several; at
hundreds of requests a second that was most of the server's time. So the hot path's few statements are SQL built
once, and their rows come back as ordinary model instances (`Model.from_db`, as the ORM builds them). A statement
selects `columns(...)` of one or more `RowPart`s, and `split_row` cuts its rows into instances in the same order:
the only place that knows where in a row a model's columns start. Everything else in the project uses the ORM.
"""

from dataclasses import dataclass
from functools import cache

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model


@dataclass(frozen=True)
class RowPart:
    """A model's columns in a hot-path row: all its concrete fields, or those named in `only` (attnames), in the
    model's order. Fields left out are deferred, as `QuerySet.only()` leaves them: reading one costs a query, so the
    hot path names what it reads."""

    model: type[Model]
    only: tuple[str, ...] | None = None

    def columns(self, alias: str) -> str:
        """`alias.column, ...` of this part, in the order `split_row` reads them."""
        return ", ".join(f"{alias}.{field.column}" for field in _fields(self.model, self.only))

    @property
    def attnames(self) -> tuple[str, ...]:
        """The fields' attnames, in the same order."""
        return _attnames(self)


@cache
def _fields(model: type[Model], only: tuple[str, ...] | None) -> tuple:
    if only is None:
        return tuple(model._meta.concrete_fields)
    unknown = set(only) - {field.attname for field in model._meta.concrete_fields}
    if unknown:
        raise ValueError(f"{model.__name__} has no fields {sorted(unknown)}")
    return tuple(field for field in model._meta.concrete_fields if field.attname in only)


@cache
def _attnames(part: RowPart) -> tuple[str, ...]:
    return tuple(field.attname for field in _fields(part.model, part.only))


@cache
def _converters(part: RowPart) -> tuple:
    """(position, converters, column) for each field whose raw database value needs converting as the ORM converts
    it (JSON text to objects, for example)."""
    found = []
    for position, field in enumerate(_fields(part.model, part.only)):
        column = field.get_col(part.model._meta.db_table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if converters:
            found.append((position, converters, column))
    return tuple(found)


def _instance(part: RowPart, values: list) -> Model | None:
    if values[0] is None:  # no primary key: an outer join found no row
        return None
    if converting := _converters(part):
        db = connections[DEFAULT_DB_ALIAS]  # looked up once: each `connection.x` is a context-local lookup
        for position, converters, column in converting:
            for convert in converters:
                values[position] = convert(values[position], column, db)
    return part.model.from_db(DEFAULT_DB_ALIAS, part.attnames, values)


def split_row(row, *parts: RowPart | int) -> list:
    """Cut a row into its parts, in order: a model instance for each `RowPart` (None when its primary key is NULL:
    an outer join found nothing), and a tuple of that many plain values for each int."""
    found, start = [], 0
    for part in parts:
        if isinstance(part, int):
            found.append(tuple(row[start : start + part]))
            start += part
        else:
            width = len(part.attnames)
            found.append(_instance(part, list(row[start : start + width])))
            start += width
    if start != len(row):
        raise ValueError(f"The row has {len(row)} values; its parts take {start}.")
    return found


def mark_saved(obj: Model, key) -> None:
    """Mark an instance that a server function inserted as saved, with its key."""
    obj.pk = key
    obj._state.adding, obj._state.db = False, connection.alias
