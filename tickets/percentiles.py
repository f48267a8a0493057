"""Medians and percentiles: PostgreSQL's percentile_cont in the database, the same formula in Python elsewhere."""

import math
from collections.abc import Sequence

from django.db import connection
from django.db.models import Aggregate, F, FloatField, Func


class PercentileCont(Aggregate):
    """PostgreSQL's continuous percentile: percentile_cont(f) WITHIN GROUP (ORDER BY expr)."""

    function = "percentile_cont"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)%(filter)s"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


class Seconds(Func):
    """`end - start` in seconds (PostgreSQL)."""

    template = "EXTRACT(EPOCH FROM (%(expressions)s))"
    arg_joiner = " - "
    output_field = FloatField()

    def __init__(self, end: str, start: str):
        super().__init__(F(end), F(start))


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """percentile_cont in Python: interpolate at position fraction * (n - 1) of the sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def in_database() -> bool:
    """Whether the database computes percentiles itself (PostgreSQL); otherwise fetch and use percentile()."""
    return connection.vendor == "postgresql"
