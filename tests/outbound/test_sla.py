"""SLA targets counted in business hours, and breaches found once with an alert to the assignee."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from mailboxes.models import OutboundEmail
from tickets import sla
from tickets.models import BusinessHours, Priority, SlaBreach, SlaPolicy

pytestmark = pytest.mark.django_db
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BERLIN)


def hours(**fields) -> BusinessHours:
    values = {
        "weekdays": [0, 1, 2, 3, 4],
        "start": dt.time(9),
        "end": dt.time(17),
        "timezone": "Europe/Berlin",
    }
    values.update(fields)
    return BusinessHours(**values)


@pytest.mark.parametrize(
    "start,minutes,due",
    [
        (at(2026, 11, 20, 16, 30), 60, at(2026, 11, 23, 9, 30)),  # Friday afternoon -> Monday morning
        (at(2026, 11, 21, 12, 0), 30, at(2026, 11, 23, 9, 30)),  # Saturday -> Monday
        (at(2026, 11, 23, 7, 0), 8 * 60, at(2026, 11, 23, 17, 0)),  # before opening: a full day
        (at(2026, 11, 23, 10, 0), 9 * 60, at(2026, 11, 24, 11, 0)),
    ],
)
def test_business_minutes_skip_nights_and_weekends(start, minutes, due):
    assert sla.add_business_minutes(start.astimezone(dt.UTC), minutes, hours()) == due


def _walk_day_by_day(start: dt.datetime, minutes: int, h: BusinessHours) -> dt.datetime:
    """The plain definition: walk the days, spending each working day's hours."""
    tz = zoneinfo.ZoneInfo(h.timezone)
    current, remaining = start.astimezone(tz), dt.timedelta(minutes=minutes)
    while True:
        day = current.date()
        opens, closes = dt.datetime.combine(day, h.start, tz), dt.datetime.combine(day, h.end, tz)
        if day.weekday() in h.weekdays and current < closes:
            begin = max(current, opens)
            if remaining <= closes - begin:
                return begin + remaining
            remaining -= closes - begin
        current = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tz)


def test_long_targets_skip_whole_weeks_and_land_where_the_day_walk_does():
    """Whole weeks are skipped at once; the result equals walking day by day, across DST changes, exact
    multiples of a week (which must end on the last working day, not after the weekend) and odd weekdays."""
    import random

    rng = random.Random(4)
    schedules = [hours(), hours(weekdays=[0, 2, 5]), hours(start=dt.time(22), end=dt.time(23, 30))]
    for _ in range(400):
        h = rng.choice(schedules)
        start = at(2026, 3, 20, 0, 0) + dt.timedelta(minutes=rng.randrange(60 * 24 * 240))
        daily = (h.end.hour * 60 + h.end.minute) - (h.start.hour * 60 + h.start.minute)
        week = daily * len(h.weekdays)
        minutes = rng.choice([rng.randrange(1, 5 * week), week, 2 * week, 3 * week + 1, daily])
        assert sla.add_business_minutes(start, minutes, h) == _walk_day_by_day(start, minutes, h), (
            start,
            minutes,
            h.weekdays,
        )


def test_without_business_hours_the_clock_runs_around_the_clock():
    start = at(2026, 11, 21, 12, 0)
    assert sla.add_business_minutes(start, 90, hours(weekdays=[])) == start + dt.timedelta(minutes=90)


def test_the_most_specific_policy_applies(tenant, ticket, support_queue):
    general = SlaPolicy.objects.create(tenant=tenant, name="All", first_response_minutes=600)
    urgent = SlaPolicy.objects.create(
        tenant=tenant, name="Urgent", priority=Priority.URGENT, first_response_minutes=60
    )
    queue_urgent = SlaPolicy.objects.create(
        tenant=tenant,
        name="Support urgent",
        queue=support_queue,
        priority=Priority.URGENT,
        first_response_minutes=30,
    )
    policies = list(SlaPolicy.objects.all())
    assert sla.policy_for(ticket, policies) == general
    ticket.priority = Priority.URGENT
    assert sla.policy_for(ticket, policies) == queue_urgent
    ticket.queue = None
    assert sla.policy_for(ticket, policies) == urgent


def test_a_breach_is_found_once_and_the_assignee_alerted(
    tenant, ticket, agent, smtp, django_capture_on_commit_callbacks
):
    tenant.timezone = "Europe/Berlin"
    tenant.save()
    BusinessHours.objects.create(tenant=tenant, weekdays=[0, 1, 2, 3, 4], start=dt.time(9), end=dt.time(17))
    SlaPolicy.objects.create(
        tenant=tenant, name="Standard", first_response_minutes=60, resolution_minutes=24 * 60
    )
    ticket.assignee = agent
    ticket.created_at = at(2026, 11, 23, 10, 0)  # a Monday
    ticket.save()

    assert sla.check_breaches(now=at(2026, 11, 23, 10, 59)) == []
    with django_capture_on_commit_callbacks(execute=True):
        found = sla.check_breaches(now=at(2026, 11, 23, 11, 1))
    assert [(b.ticket_id, b.target, b.due_at) for b in found] == [
        (ticket.pk, "first_response", at(2026, 11, 23, 11, 0))
    ]
    alert = OutboundEmail.objects.get(kind="notification")
    assert alert.to == ["agnes@acme.test"] and alert.status == "sent"
    assert "missed its first response target (Standard)" in alert.text
    assert smtp.messages[-1].message["Auto-Submitted"] == "auto-generated"

    with django_capture_on_commit_callbacks(execute=True):
        assert sla.check_breaches(now=at(2026, 11, 23, 12, 0)) == []  # once
    assert OutboundEmail.objects.filter(kind="notification").count() == 1
    # Resolution: 24 business hours = three working days later.
    found = sla.check_breaches(now=at(2026, 11, 26, 10, 1))
    assert [b.target for b in found] == ["resolution"]
    assert SlaBreach.objects.count() == 2


def test_answered_tickets_do_not_breach_first_response(tenant, ticket, agent):
    SlaPolicy.objects.create(tenant=tenant, name="Fast", first_response_minutes=1, business_hours_only=False)
    ticket.created_at = at(2026, 11, 23, 10, 0)
    ticket.first_response_at = at(2026, 11, 23, 10, 0, 30)
    ticket.save()
    assert sla.check_breaches(now=at(2026, 11, 23, 11, 0)) == []
