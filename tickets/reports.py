"""Reports: volume per day, response and resolution times, backlog by queue and agent, SLA breaches.

Everything is aggregated in the database in a fixed number of queries, whatever the number of tickets. Medians
and 90th percentiles use PostgreSQL's `percentile_cont` (linear interpolation between the two nearest
values); on SQLite, the embedded default, the durations are fetched and the same formula runs in Python.

Definitions (shown on the page too):
- *created* counts tickets by `created_at`, *solved* by `solved_at`, in the tenant's time zone; a ticket
  reopened since it was solved has no `solved_at` and is not counted as solved;
- *first response time* is `first_response_at - created_at` of tickets created in the period;
- *resolution time* is `solved_at - created_at` of tickets solved in the period;
- per agent, both are attributed to the ticket's current assignee;
- the backlog is the open tickets now (new, open, pending), whatever the period.

Members see what their tickets allow (`Ticket.objects.visible_to`); agents see their own row of the agents
table, admins every agent.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db.models import Count, F, Min, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Membership, Role, Tenant, User
from tickets import percentiles
from tickets.models import OPEN_STATUSES, SlaBreach, SlaPolicy, SlaTarget, Status, Ticket

MAX_DAYS = 366

# --- the period ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole days from `start` to `end` (both included) in the tenant's time zone."""

    start: dt.date
    end: dt.date
    tz: zoneinfo.ZoneInfo

    @property
    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    @property
    def since(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time.min, tzinfo=self.tz)

    @property
    def until(self) -> dt.datetime:
        """The first instant after the period."""
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time.min, tzinfo=self.tz)

    @property
    def length(self) -> int:
        return (self.end - self.start).days + 1


def tenant_tz(tenant: Tenant) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(tenant.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def today(tenant: Tenant) -> dt.date:
    return timezone.now().astimezone(tenant_tz(tenant)).date()


def period_for(
    tenant: Tenant, start: dt.date | None = None, end: dt.date | None = None, *, days: int = 30
) -> Period:
    """The period asked for, or the last `days` days up to today; swapped if reversed, capped at a year."""
    end = end or today(tenant)
    start = start or end - dt.timedelta(days=days - 1)
    if start > end:
        start, end = end, start
    start = max(start, end - dt.timedelta(days=MAX_DAYS - 1))
    return Period(start=start, end=end, tz=tenant_tz(tenant))


def scope(membership: Membership) -> QuerySet[Ticket]:
    """The tickets the member's reports count: all of the tenant for admins, the visible ones for others."""
    if membership.is_admin:
        return Ticket.objects.for_tenant(membership.tenant)
    return Ticket.objects.for_tenant(membership.tenant).filter(
        pk__in=Ticket.objects.visible_to(membership).values("pk")
    )


# --- durations ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeStats:
    """Durations in seconds: how many, the median and the 90th percentile (None without data)."""

    count: int = 0
    median: float | None = None
    p90: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> TimeStats:
        return cls(len(values), percentiles.percentile(values, 0.5), percentiles.percentile(values, 0.9))


# --- the parts of the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayRow:
    day: dt.date
    created: int
    solved: int


def daily_volume(tickets: QuerySet[Ticket], period: Period) -> list[DayRow]:
    """Tickets created and solved on each day of the period, zero days included (two queries)."""

    def per_day(field_name: str) -> dict[dt.date, int]:
        rows = (
            tickets.filter(**{f"{field_name}__gte": period.since, f"{field_name}__lt": period.until})
            .annotate(day=TruncDate(field_name, tzinfo=period.tz))
            .values("day")
            .annotate(n=Count("pk"))
            .order_by()
        )
        return {row["day"]: row["n"] for row in rows}

    created, solved = per_day("created_at"), per_day("solved_at")
    return [DayRow(day, created.get(day, 0), solved.get(day, 0)) for day in period.days]


@dataclass(frozen=True)
class ResponseTimes:
    first_response: TimeStats
    resolution: TimeStats


def _created_in(period: Period) -> Q:
    return Q(created_at__gte=period.since, created_at__lt=period.until, first_response_at__isnull=False)


def _solved_in(period: Period) -> Q:
    return Q(solved_at__gte=period.since, solved_at__lt=period.until)


def response_times(tickets: QuerySet[Ticket], period: Period) -> ResponseTimes:
    """Median and p90 of first response and resolution times in the period (one query)."""
    by_group = _times_by(tickets, period, group=None)
    return by_group.get(None, ResponseTimes(TimeStats(), TimeStats()))


def _times_by(tickets: QuerySet[Ticket], period: Period, *, group: str | None) -> dict:
    """{group value: ResponseTimes}; `group` is a field such as "assignee" (None: one group for all)."""
    first, solved = _created_in(period), _solved_in(period)
    relevant = tickets.filter(first | solved)
    if percentiles.in_database():
        fr, rs = (
            percentiles.Seconds("first_response_at", "created_at"),
            percentiles.Seconds("solved_at", "created_at"),
        )
        aggregates = {
            "fr_n": Count("pk", filter=first),
            "fr_median": percentiles.PercentileCont(fr, 0.5, filter=first),
            "fr_p90": percentiles.PercentileCont(fr, 0.9, filter=first),
            "rs_n": Count("pk", filter=solved),
            "rs_median": percentiles.PercentileCont(rs, 0.5, filter=solved),
            "rs_p90": percentiles.PercentileCont(rs, 0.9, filter=solved),
        }
        if group is None:
            rows = [{"g": None, **relevant.aggregate(**aggregates)}]
        else:
            rows = relevant.values(g=F(group)).annotate(**aggregates).order_by()
        return {
            row["g"]: ResponseTimes(
                TimeStats(row["fr_n"], row["fr_median"], row["fr_p90"]),
                TimeStats(row["rs_n"], row["rs_median"], row["rs_p90"]),
            )
            for row in rows
        }
    # SQLite: fetch the timestamps (only those of the period) and compute the same percentiles in Python.
    fr_values: dict = defaultdict(list)
    rs_values: dict = defaultdict(list)
    fields = ["created_at", "first_response_at", "solved_at"] + ([group] if group else [])
    for row in relevant.values_list(*fields):
        key = row[3] if group else None
        created, responded, solved_at = row[0], row[1], row[2]
        if responded is not None and period.since <= created < period.until:
            fr_values[key].append((responded - created).total_seconds())
        if solved_at is not None and period.since <= solved_at < period.until:
            rs_values[key].append((solved_at - created).total_seconds())
    return {
        key: ResponseTimes(TimeStats.of(fr_values.get(key, [])), TimeStats.of(rs_values.get(key, [])))
        for key in set(fr_values) | set(rs_values)
    }


@dataclass(frozen=True)
class QueueRow:
    queue_id: int | None
    name: str
    new: int
    open: int
    pending: int
    oldest: dt.datetime | None

    @property
    def total(self) -> int:
        return self.new + self.open + self.pending


def _backlog_counts() -> dict:
    return {
        "new": Count("pk", filter=Q(status=Status.NEW)),
        "open": Count("pk", filter=Q(status=Status.OPEN)),
        "pending": Count("pk", filter=Q(status=Status.PENDING)),
    }


def backlog_by_queue(tickets: QuerySet[Ticket]) -> list[QueueRow]:
    """Open tickets now, per queue (tickets without a queue last), largest first (one query)."""
    rows = (
        tickets.open()
        .values("queue_id", "queue__name")
        .annotate(**_backlog_counts(), oldest=Min("created_at"))
        .order_by()
    )
    result = [
        QueueRow(
            r["queue_id"], r["queue__name"] or "No queue", r["new"], r["open"], r["pending"], r["oldest"]
        )
        for r in rows
    ]
    return sorted(result, key=lambda r: (r.queue_id is None, -r.total, r.name.lower()))


@dataclass
class AgentRow:
    user_id: int | None
    name: str
    new: int = 0
    open: int = 0
    pending: int = 0
    solved: int = 0
    times: ResponseTimes = field(default_factory=lambda: ResponseTimes(TimeStats(), TimeStats()))

    @property
    def backlog(self) -> int:
        return self.new + self.open + self.pending


def agents(tickets: QuerySet[Ticket], period: Period, membership: Membership) -> list[AgentRow]:
    """Per agent: backlog now, tickets solved in the period and their times; agents see only themselves."""
    if not membership.is_admin:
        tickets = tickets.filter(assignee=membership.user_id)
    counts = (
        tickets.filter(Q(status__in=OPEN_STATUSES) | _solved_in(period))
        .values("assignee_id")
        .annotate(**_backlog_counts(), solved=Count("pk", filter=_solved_in(period)))
        .order_by()
    )
    times = _times_by(tickets, period, group="assignee_id")

    if membership.is_admin:
        team = Membership.objects.for_tenant(membership.tenant).exclude(role=Role.LIGHT_AGENT)
        ids = set(team.values_list("user_id", flat=True))
    else:
        ids = {membership.user_id}
    rows = {r["assignee_id"]: r for r in counts}
    ids |= {i for i in (*rows, *times) if i is not None}
    users = {u.pk: u.display_name for u in User.objects.filter(pk__in=ids).only("name", "email")}

    result = []
    keys: Iterable = sorted(ids, key=lambda i: users.get(i, "").lower())
    if membership.is_admin and None in rows:
        keys = [*keys, None]
    for user_id in keys:
        row = rows.get(user_id, {})
        result.append(
            AgentRow(
                user_id=user_id,
                name=users.get(user_id, "Unassigned") if user_id else "Unassigned",
                new=row.get("new", 0),
                open=row.get("open", 0),
                pending=row.get("pending", 0),
                solved=row.get("solved", 0),
                times=times.get(user_id, ResponseTimes(TimeStats(), TimeStats())),
            )
        )
    return result


@dataclass(frozen=True)
class SlaRow:
    queue_id: int | None
    name: str
    first_response: int
    resolution: int

    @property
    def total(self) -> int:
        return self.first_response + self.resolution


@dataclass(frozen=True)
class SlaReport:
    has_policies: bool
    rows: list[SlaRow]

    @property
    def first_response(self) -> int:
        return sum(r.first_response for r in self.rows)

    @property
    def resolution(self) -> int:
        return sum(r.resolution for r in self.rows)

    @property
    def total(self) -> int:
        return self.first_response + self.resolution


def sla_breaches(tickets: QuerySet[Ticket], period: Period, tenant: Tenant) -> SlaReport:
    """Missed SLA targets whose due time fell in the period, per queue of the ticket (two queries)."""
    has_policies = SlaPolicy.objects.for_tenant(tenant).filter(is_active=True).exists()
    rows = (
        SlaBreach.objects.filter(
            tenant=tenant, due_at__gte=period.since, due_at__lt=period.until, ticket__in=tickets.values("pk")
        )
        .values("ticket__queue_id", "ticket__queue__name")
        .annotate(
            fr=Count("pk", filter=Q(target=SlaTarget.FIRST_RESPONSE)),
            rs=Count("pk", filter=Q(target=SlaTarget.RESOLUTION)),
        )
        .order_by()
    )
    result = [
        SlaRow(r["ticket__queue_id"], r["ticket__queue__name"] or "No queue", r["fr"], r["rs"]) for r in rows
    ]
    return SlaReport(has_policies, sorted(result, key=lambda r: (-r.total, r.name.lower())))


# --- the whole report ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    period: Period
    daily: list[DayRow]
    times: ResponseTimes
    queues: list[QueueRow]
    agents: list[AgentRow]
    sla: SlaReport
    open_now: int

    @property
    def created(self) -> int:
        return sum(d.created for d in self.daily)

    @property
    def solved(self) -> int:
        return sum(d.solved for d in self.daily)


def build(membership: Membership, period: Period) -> Report:
    """The report the member may see for the period, in a fixed number of queries."""
    tickets = scope(membership)
    queues = backlog_by_queue(tickets)
    return Report(
        period=period,
        daily=daily_volume(tickets, period),
        times=response_times(tickets, period),
        queues=queues,
        agents=agents(tickets, period, membership),
        sla=sla_breaches(tickets, period, membership.tenant),
        open_now=sum(q.total for q in queues),
    )
