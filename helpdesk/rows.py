"""Many rows of one table changed in one statement: ``UPDATE ... FROM (VALUES ...)``.

Django's `bulk_update` builds a ``CASE WHEN`` expression per row and field, which costs more CPU than the rows'
own statements would; here each row is one tuple of values, adapted by its model field and cast to the
column's type (a NULL in ``VALUES`` is otherwise untyped). PostgreSQL only (where intake batches its writes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models


def update_from_values(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    also: str = "",
    where: str = "",
    params: Sequence[Any] = (),
) -> int:
    """Set `fields` of each row ``(pk, value, ...)``; returns how many rows the database changed.

    `also`: more SQL assignments for every row (``"attempts = t.attempts + 1"``); `where`: a further condition
    on the table, aliased ``t`` (``"t.status = %s"``), with its `params`."""
    if not rows:
        return 0
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
    with connection.cursor() as cursor:
        cursor.execute(sql, [*prepared, *params])
        return cursor.rowcount
