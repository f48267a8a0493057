"""CSV export of the report's tables: one function per table, cells safe to open in a spreadsheet."""

import csv
import datetime as dt
import io
import zoneinfo

from tickets.reports import Report


def _hours(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 3600:.2f}"


def _iso(value: dt.datetime | None, tz: zoneinfo.ZoneInfo) -> str:
    return value.astimezone(tz).isoformat(timespec="seconds") if value else ""


def table_daily(report: Report) -> tuple[list[str], list[list]]:
    return ["date", "created", "solved"], [[d.day.isoformat(), d.created, d.solved] for d in report.daily]


def table_times(report: Report) -> tuple[list[str], list[list]]:
    header = ["measure", "tickets", "median_hours", "p90_hours"]
    fr, rs = report.times.first_response, report.times.resolution
    return header, [
        ["first_response", fr.count, _hours(fr.median), _hours(fr.p90)],
        ["resolution", rs.count, _hours(rs.median), _hours(rs.p90)],
    ]


def table_queues(report: Report) -> tuple[list[str], list[list]]:
    header = ["queue", "new", "open", "pending", "total", "oldest_created_at"]
    tz = report.period.tz
    return header, [[q.name, q.new, q.open, q.pending, q.total, _iso(q.oldest, tz)] for q in report.queues]


def table_agents(report: Report) -> tuple[list[str], list[list]]:
    header = [
        "agent",
        "new",
        "open",
        "pending",
        "backlog",
        "solved",
        "first_response_median_hours",
        "first_response_p90_hours",
        "resolution_median_hours",
        "resolution_p90_hours",
    ]
    rows = [
        [
            a.name,
            a.new,
            a.open,
            a.pending,
            a.backlog,
            a.solved,
            _hours(a.times.first_response.median),
            _hours(a.times.first_response.p90),
            _hours(a.times.resolution.median),
            _hours(a.times.resolution.p90),
        ]
        for a in report.agents
    ]
    return header, rows


def table_sla(report: Report) -> tuple[list[str], list[list]]:
    header = ["queue", "first_response_breaches", "resolution_breaches", "total"]
    return header, [[r.name, r.first_response, r.resolution, r.total] for r in report.sla.rows]


TABLES = {
    "daily": ("Tickets per day", table_daily),
    "times": ("Response times", table_times),
    "queues": ("Backlog by queue", table_queues),
    "agents": ("Agents", table_agents),
    "sla": ("SLA breaches", table_sla),
}


def _safe_cell(value) -> object:
    # Spreadsheets run cells starting with = + - @ as formulas; queue and agent names are user input.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(report: Report, table: str) -> str:
    """One table of the report as CSV text (KeyError for an unknown table)."""
    header, rows = TABLES[table][1](report)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([_safe_cell(v) for v in row] for row in rows)
    return out.getvalue()
