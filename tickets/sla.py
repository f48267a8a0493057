"""Service levels: first-response and resolution targets per queue and priority, counted in business hours.

`due_dates(ticket)` says when a ticket's targets fall due and `next_due(...)` which one is next (the lists'
SLA chip: `attach_next_due(rows, tenant)`, two queries a page); `check_breaches()` (a beat task, every minute)
records each missed target once (`SlaBreach` is unique per ticket and target, so two beat runs or two
workers cannot alert twice) and alerts the assignee through `tickets.notifications` in the same transaction.
"""

from __future__ import annotations

import logging
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from tickets.models import (
    OPEN_STATUSES,
    BusinessHours,
    SlaBreach,
    SlaPolicy,
    SlaTarget,
    Ticket,
)

log = logging.getLogger(__name__)


def business_hours(tenant) -> BusinessHours:
    """The tenant's hours (an unsaved Monday-Friday 09:00-17:00 when none were set)."""
    hours = BusinessHours.objects.filter(tenant=tenant).first()
    return hours or BusinessHours(tenant=tenant, start=time(9), end=time(17))


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _as_time(value) -> time:
    return value if isinstance(value, time) else time.fromisoformat(str(value))


def add_business_minutes(start: datetime, minutes: int, hours: BusinessHours, tz_name: str = "") -> datetime:
    """``start`` plus ``minutes`` of working time (weekdays, start-end, in the hours' time zone)."""
    return WorkingTime(hours, tz_name).add(start, minutes)


class WorkingTime:
    """Business hours ready for counting: read once, then `add()` for every ticket of a list."""

    def __init__(self, hours: BusinessHours, tz_name: str = ""):
        self.begin, self.end = _as_time(hours.start), _as_time(hours.end)
        self.weekdays = frozenset(int(d) for d in (hours.weekdays or []))
        self.usable = bool(self.weekdays) and self.end > self.begin  # else the clock runs around the clock
        self.tz = _zone(hours.timezone or tz_name)
        # From a midnight on, every seven days hold each working day once (in wall-clock time, so DST cannot
        # change it): whole weeks are skipped at once instead of walked day by day.
        daily = datetime.combine(date.min, self.end) - datetime.combine(date.min, self.begin)
        self.week = daily * len(self.weekdays)

    def add(self, start: datetime, minutes: int) -> datetime:
        """``start`` plus ``minutes`` of working time."""
        remaining = timedelta(minutes=minutes)
        if not self.usable:
            return start + remaining
        tz, begin_t, end_t, weekdays, week = self.tz, self.begin, self.end, self.weekdays, self.week
        current = start.astimezone(tz)
        for _ in range(800):  # a little over two years of days: enough for any sane target
            day: date = current.date()
            day_start = datetime.combine(day, begin_t, tz)
            day_end = datetime.combine(day, end_t, tz)
            if day.weekday() in weekdays and current < day_end:
                begin = max(current, day_start)
                available = day_end - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
            day += timedelta(days=1)
            if remaining > week:
                weeks = (remaining - timedelta(microseconds=1)) // week
                day += timedelta(days=7 * weeks)
                remaining -= week * weeks
            current = datetime.combine(day, time(0), tz)
        return current + remaining


def policy_for(ticket: Ticket, policies: list[SlaPolicy]) -> SlaPolicy | None:
    """The most specific active policy: queue and priority, then queue, then priority, then the catch-all."""
    best: tuple[int, SlaPolicy] | None = None
    for policy in policies:
        if not policy.is_active:
            continue
        if policy.queue_id is not None and policy.queue_id != ticket.queue_id:
            continue
        if policy.priority is not None and policy.priority != ticket.priority:
            continue
        score = (2 if policy.queue_id else 0) + (1 if policy.priority is not None else 0)
        if best is None or score > best[0]:
            best = (score, policy)
    return best[1] if best else None


@dataclass(frozen=True)
class Due:
    policy: SlaPolicy
    first_response: datetime | None
    resolution: datetime | None


def due_dates(
    ticket: Ticket,
    policies: list[SlaPolicy] | None = None,
    hours: BusinessHours | WorkingTime | None = None,
    tz_name: str | None = None,
) -> Due | None:
    """When the ticket's targets fall due (None without an applicable policy).

    Callers that loop pass the tenant's policies, hours and time zone, so no row loads its tenant.
    """
    if policies is None:
        policies = list(SlaPolicy.objects.for_tenant(ticket.tenant))
    policy = policy_for(ticket, policies)
    if policy is None:
        return None
    if hours is None and policy.business_hours_only:
        hours = business_hours(ticket.tenant)
    if tz_name is None:
        tz_name = ticket.tenant.timezone

    def due(minutes: int | None) -> datetime | None:
        return None if minutes is None else _due_at(ticket, policy, minutes, hours, tz_name)

    return Due(policy, due(policy.first_response_minutes), due(policy.resolution_minutes))


def _due_at(
    ticket: Ticket, policy: SlaPolicy, minutes: int, hours: BusinessHours | WorkingTime | None, tz_name: str
) -> datetime:
    """When `minutes` of the policy's time after the ticket was opened run out."""
    if not policy.business_hours_only:
        return ticket.created_at + timedelta(minutes=minutes)
    working = hours if isinstance(hours, WorkingTime) else WorkingTime(hours, tz_name)
    return working.add(ticket.created_at, minutes)


@dataclass(frozen=True)
class NextDue:
    """The deadline a ticket races next: its first response while unanswered, else its resolution."""

    target: str  # an SlaTarget value
    at: datetime

    @property
    def label(self) -> str:
        return SlaTarget(self.target).label


def next_due(
    ticket: Ticket, policies: list[SlaPolicy], hours: BusinessHours | WorkingTime | None, tz_name: str
) -> NextDue | None:
    """The earliest target still pending (None when no policy applies or the ticket is solved or closed).

    Uses only the ticket's own columns (status, priority, queue, created_at, first_response_at), so a list
    computes it for every row without a query per row.
    """
    if ticket.status not in OPEN_STATUSES or ticket.merged_into_id is not None:
        return None
    policy = policy_for(ticket, policies)
    if policy is None:
        return None
    pending = [(policy.resolution_minutes, SlaTarget.RESOLUTION)]
    if ticket.first_response_at is None:
        pending.append((policy.first_response_minutes, SlaTarget.FIRST_RESPONSE))
    pending = [(minutes, target) for minutes, target in pending if minutes is not None]
    if not pending:
        return None
    # Fewer minutes fall due first, in business time as on the clock: only the earliest target is computed
    # (a list computes this for every row).
    minutes, target = min(pending)
    return NextDue(target=str(target), at=_due_at(ticket, policy, minutes, hours, tz_name))


def attach_next_due(tickets: list[Ticket], tenant) -> bool:
    """Set `sla_due` (a NextDue or None) on each ticket of one tenant; True when SLA policies apply to them.

    At most two queries (the active policies, the business hours when a policy counts them), whatever the rows.
    """
    open_rows = [t for t in tickets if t.status in OPEN_STATUSES]
    policies = list(SlaPolicy.objects.for_tenant(tenant).filter(is_active=True)) if open_rows else []
    hours = (
        WorkingTime(business_hours(tenant), tenant.timezone)
        if any(p.business_hours_only for p in policies)
        else None
    )
    for ticket in tickets:
        ticket.sla_due = next_due(ticket, policies, hours, tenant.timezone) if policies else None
    return bool(policies)


def check_breaches(now: datetime | None = None) -> list[SlaBreach]:
    """Record every target missed since the last run (once) and alert; returns the new breaches."""
    from accounts.models import Tenant

    now = now or timezone.now()
    found: list[SlaBreach] = []
    tenant_ids = SlaPolicy.objects.filter(is_active=True).values_list("tenant_id", flat=True).distinct()
    for tenant in Tenant.objects.filter(pk__in=list(tenant_ids)):
        policies = list(SlaPolicy.objects.for_tenant(tenant).filter(is_active=True))
        targets = [
            m for p in policies for m in (p.first_response_minutes, p.resolution_minutes) if m is not None
        ]
        if not targets:
            continue
        hours = WorkingTime(business_hours(tenant), tenant.timezone)  # read once for all the tenant's tickets
        # Business minutes are never shorter than clock minutes: younger tickets cannot be due yet.
        tickets = (
            Ticket.objects.for_tenant(tenant)
            .open()
            .filter(merged_into__isnull=True, created_at__lte=now - timedelta(minutes=min(targets)))
            .select_related("tenant", "queue", "assignee", "requester", "mailbox")
        )
        already = set(SlaBreach.objects.filter(tenant=tenant).values_list("ticket_id", "target"))
        for ticket in tickets.iterator(chunk_size=500):
            due = due_dates(ticket, policies, hours, tenant.timezone)
            if due is None:
                continue
            checks = [
                (SlaTarget.FIRST_RESPONSE, due.first_response, ticket.first_response_at is None),
                (SlaTarget.RESOLUTION, due.resolution, ticket.status in OPEN_STATUSES),
            ]
            for target, due_at, pending in checks:
                if due_at is None or not pending or due_at > now or (ticket.pk, target) in already:
                    continue
                breach = _record(ticket, target, due.policy, due_at)
                if breach is not None:
                    found.append(breach)
    return found


def _record(ticket: Ticket, target: str, policy: SlaPolicy, due_at: datetime) -> SlaBreach | None:
    from tickets import notifications

    try:
        with transaction.atomic():
            breach = SlaBreach.objects.create(
                tenant_id=ticket.tenant_id, ticket=ticket, target=target, policy=policy, due_at=due_at
            )
            notifications.sla_breached(breach)
    except IntegrityError:  # another run recorded it a moment ago
        return None
    log.info("SLA %s breached on ticket %s (due %s)", target, ticket.pk, due_at)
    return breach
