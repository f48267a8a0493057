"""Server-rendered SVG charts: geometry computed here, drawn by a template (no JavaScript, CSP-friendly)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.utils.formats import date_format

from tickets.reports import DayRow

WIDTH, HEIGHT = 960, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 28


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    left: int
    right: float
    top: int
    bottom: float
    series: list[tuple[str, str, list[Bar]]]  # (css class, legend label, bars)
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    summary: str


def nice_ceiling(value: float) -> int:
    """The smallest of 1, 2, 5 x 10^k (at least 4) that is >= value: a round top for the y axis."""
    if value <= 4:
        return 4
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return math.ceil(step * magnitude)
    return int(10 * magnitude)


def daily_bars(rows: list[DayRow]) -> BarChart:
    """Created and solved per day as grouped bars, with a rounded y axis and about eight date labels."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top_value = nice_ceiling(max([1, *(r.created for r in rows), *(r.solved for r in rows)]))
    slot = plot_w / max(len(rows), 1)
    bar_w = max(slot * 0.36, 1.0)
    gap = slot * 0.06

    def bar(i: int, value: int, offset: float, title: str) -> Bar:
        height = plot_h * value / top_value
        x = LEFT + i * slot + slot / 2 + offset
        return Bar(round(x, 2), round(TOP + plot_h - height, 2), round(bar_w, 2), round(height, 2), title)

    created, solved = [], []
    for i, r in enumerate(rows):
        day = date_format(r.day, "D j M")
        created.append(bar(i, r.created, -bar_w - gap / 2, f"{day}: {r.created} created"))
        solved.append(bar(i, r.solved, gap / 2, f"{day}: {r.solved} solved"))

    y_ticks = [Tick(round(TOP + plot_h - plot_h * k / 4, 2), f"{top_value * k / 4:g}") for k in range(5)]
    every = max(1, math.ceil(len(rows) / 8))
    x_ticks = [
        Tick(round(LEFT + i * slot + slot / 2, 2), date_format(r.day, "j M"))
        for i, r in enumerate(rows)
        if i % every == 0
    ]
    total_created, total_solved = sum(r.created for r in rows), sum(r.solved for r in rows)
    summary = f"{total_created} tickets created and {total_solved} solved over {len(rows)} days."
    return BarChart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=WIDTH - RIGHT,
        top=TOP,
        bottom=TOP + plot_h,
        series=[("bar-created", "Created", created), ("bar-solved", "Solved", solved)],
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        summary=summary,
    )
