"""Many rows written in few statements and round trips, for intake's batches on PostgreSQL.

* `insert` is a multi-row ``INSERT`` of model instances, without the ``RETURNING`` Django's `bulk_create` adds
  (intake takes the ids it needs from the sequences up front);
* `update` is ``UPDATE ... FROM (VALUES ...)``, one tuple per row (Django's `bulk_update` builds a ``CASE WHEN``
  per row and field, which costs more CPU than the rows' own statements would);
* `execute_together` sends statements that do not depend on each other's results in one round trip.

Values are adapted by their model fields and cast to the column types (a NULL in ``VALUES`` is otherwise
untyped).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models

Statement = tuple[str, list[Any]]


def insert(
    model: type[models.Model], objs: Sequence[models.Model], *, ignore_conflicts: bool = False
) -> Statement:
    """``INSERT`` of these instances (every concrete field; the id when they have one), as one statement."""
    if not objs:
        return "", []
    opts = model._meta
    with_id = objs[0].pk is not None  # all or none: ids taken up front, or left to the database
    fields = [f for f in opts.concrete_fields if f.column and (with_id or not f.primary_key)]
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(opts.db_table)
    sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * len(objs))}"  # noqa: S608 (ours)
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in objs for f in fields]
    return sql, params


def update(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    also: str = "",
    where: str = "",
    params: Sequence[Any] = (),
) -> Statement:
    """Set `fields` of each row ``(pk, value, ...)``.

    `also`: more SQL assignments for every row (``"attempts = t.attempts + 1"``); `where`: a further condition
    on the table, aliased ``t`` (``"t.status = %s"``), with its `params`."""
    if not rows:
        return "", []
    opts = model._meta
    columns = [opts.pk, *(opts.get_field(name) for name in fields)]
    casts = ", ".join(f"%s::{field.db_type(connection)}" for field in columns)
    values = ", ".join([f"({casts})"] * len(rows))
    names = [connection.ops.quote_name(field.column) for field in columns]
    assignments = [f"{name} = v.{name}" for name in names[1:]] + ([also] if also else [])
    sql = (
        f"UPDATE {connection.ops.quote_name(opts.db_table)} AS t SET {', '.join(assignments)} "  # noqa: S608
        f"FROM (VALUES {values}) AS v({', '.join(names)}) WHERE t.{names[0]} = v.{names[0]}"
        + (f" AND {where}" if where else "")
    )
    prepared = [
        field.get_db_prep_save(value, connection)
        for row in rows
        for field, value in zip(columns, row, strict=True)
    ]
    return sql, [*prepared, *params]


def execute_together(statements: Sequence[Statement]) -> list[int]:
    """Run the statements in one round trip; returns each one's row count.

    Django's PostgreSQL connections bind parameters on the client, so the statements travel as one simple
    query; with server-side binding (which allows one statement per query) they run one by one."""
    statements = [s for s in statements if s[0]]
    if not statements:
        return []
    with connection.cursor() as cursor:
        raw = cursor.cursor
        if len(statements) == 1 or not _binds_on_client(raw):
            counts = []
            for sql, params in statements:
                cursor.execute(sql, params)
                counts.append(cursor.rowcount)
            return counts
        cursor.execute(
            "; ".join(sql for sql, _ in statements), [p for _, params in statements for p in params]
        )
        counts = [raw.rowcount]
        while raw.nextset():
            counts.append(raw.rowcount)
        return counts


def _binds_on_client(cursor) -> bool:
    import psycopg

    return isinstance(cursor, psycopg.ClientCursor)
