"""Routing: automatic assignment in queues, replies back to their agent, the away timeout, replies first."""

import datetime as dt
from itertools import count
from unittest import mock

import pytest
from django.utils import timezone

from accounts.models import Membership, Role
from helpdesk.celery import app as celery_app
from tests.conftest import make_member
from tickets import routing, tasks
from tickets.models import AgentStatus, Queue, RoutingMode, Status, Ticket, TicketEvent

_numbers = count(1)
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def ticket(tenant, queue=None, **fields) -> Ticket:
    fields.setdefault("title", "Help")
    return Ticket.objects.create(tenant=tenant, number=next(_numbers), queue=queue, **fields)


def membership(user, tenant) -> Membership:
    return Membership.objects.get(user=user, tenant=tenant)


@pytest.fixture
def team(tenant):
    """Three agents who work the queue (Cleo is away) and a light agent who may not answer customers."""
    people = {
        "ada": make_member(tenant, "ada@acme.test", Role.AGENT, "Ada"),
        "bob": make_member(tenant, "bob@acme.test", Role.AGENT, "Bob"),
        "cleo": make_member(tenant, "cleo@acme.test", Role.ADMIN, "Cleo"),
        "leo": make_member(tenant, "leo@acme.test", Role.LIGHT_AGENT, "Leo"),
    }
    Membership.objects.filter(user=people["cleo"]).update(is_available=False)
    return people


@pytest.fixture
def queue(tenant, team):
    q = Queue.objects.create(
        tenant=tenant, name="Support", routing=RoutingMode.ROUND_ROBIN, away_timeout_minutes=30
    )
    q.members.set(Membership.objects.filter(tenant=tenant, user__in=team.values()))
    return q


def test_round_robin_takes_turns_among_available_members_and_skips_away_and_light_agents(tenant, team, queue):
    assignees = []
    for _ in range(5):
        t = ticket(tenant, queue)
        assignees.append(routing.assign_new_ticket(t))
        t.refresh_from_db()
        assert t.assignee == assignees[-1]
    assert [u.name for u in assignees] == ["Ada", "Bob", "Ada", "Bob", "Ada"]
    queue.refresh_from_db()
    assert queue.last_assigned == membership(team["ada"], tenant)


def test_round_robin_continues_after_the_last_assigned_member(tenant, team, queue):
    queue.last_assigned = membership(team["ada"], tenant)
    queue.save()
    assert routing.assign_new_ticket(ticket(tenant, queue)) == team["bob"]


def test_round_robin_includes_an_agent_again_once_available(tenant, team, queue):
    Membership.objects.filter(user=team["cleo"]).update(is_available=True)
    names = [routing.assign_new_ticket(ticket(tenant, queue)).name for _ in range(3)]
    assert names == ["Ada", "Bob", "Cleo"]


def test_fewest_open_gives_the_ticket_to_the_available_member_with_least_open_tickets(tenant, team, queue):
    queue.routing = RoutingMode.FEWEST_OPEN
    queue.save()
    for _ in range(2):
        ticket(tenant, assignee=team["ada"], status=Status.OPEN)
    ticket(tenant, assignee=team["bob"], status=Status.PENDING)
    for _ in range(3):  # solved tickets are no load
        ticket(tenant, assignee=team["bob"], status=Status.SOLVED)
    # Cleo has no tickets at all but is away: she is skipped.
    assert routing.assign_new_ticket(ticket(tenant, queue)) == team["bob"]
    # Now Ada 2, Bob 2: a tie goes to the earlier member (Ada), then Bob is the lighter one.
    assert routing.assign_new_ticket(ticket(tenant, queue)) == team["ada"]
    assert routing.assign_new_ticket(ticket(tenant, queue)) == team["bob"]


def test_fewest_open_counts_tickets_of_this_tenant_only(tenant, team, queue, other_tenant):
    queue.routing = RoutingMode.FEWEST_OPEN
    queue.save()
    ticket(tenant, assignee=team["bob"], status=Status.OPEN)
    for _ in range(3):  # Ada is busy elsewhere; it does not count here
        ticket(other_tenant, assignee=team["ada"], status=Status.OPEN)
    assert routing.assign_new_ticket(ticket(tenant, queue)) == team["ada"]


def test_manual_queue_leaves_new_tickets_unassigned(tenant, team, queue):
    queue.routing = RoutingMode.MANUAL
    queue.save()
    t = ticket(tenant, queue)
    assert routing.assign_new_ticket(t) is None
    t.refresh_from_db()
    assert t.assignee is None


def test_nobody_available_leaves_the_ticket_in_the_queue(tenant, team, queue):
    Membership.objects.filter(tenant=tenant).update(is_available=False)
    t = ticket(tenant, queue)
    assert routing.assign_new_ticket(t) is None
    assert Ticket.objects.get(pk=t.pk).assignee is None


def test_ticket_without_queue_with_assignee_or_closed_is_left_alone(tenant, team, queue):
    assert routing.assign_new_ticket(ticket(tenant)) is None
    t = ticket(tenant, queue, assignee=team["cleo"])
    assert routing.assign_new_ticket(t) == team["cleo"]
    assert (
        routing.assign_new_ticket(ticket(tenant, queue, status=Status.CLOSED)) is None
    )  # imported as closed
    queue.refresh_from_db()
    assert queue.last_assigned is None


def test_automatic_assignment_is_recorded_in_the_ticket_history(tenant, team, queue):
    t = ticket(tenant, queue)
    routing.assign_new_ticket(t)
    event = TicketEvent.objects.get(ticket=t)
    assert (event.field, event.old, event.new, event.actor) == ("assignee", "", "Ada", None)


def test_customer_reply_stays_with_the_assigned_agent_while_away_shorter_than_timeout(tenant, team, queue):
    t = ticket(tenant, queue, assignee=team["cleo"], status=Status.OPEN)
    routing.record_availability(membership(team["cleo"], tenant), now=T0)
    assert routing.route_customer_reply(t, now=T0 + dt.timedelta(minutes=29)) == team["cleo"]
    assert Ticket.objects.get(pk=t.pk).assignee == team["cleo"]


def test_customer_reply_to_an_agent_away_past_the_timeout_goes_to_an_available_member(tenant, team, queue):
    t = ticket(tenant, queue, assignee=team["cleo"], status=Status.OPEN)
    routing.record_availability(membership(team["cleo"], tenant), now=T0)
    assert routing.route_customer_reply(t, now=T0 + dt.timedelta(minutes=31)) == team["ada"]
    assert list(TicketEvent.objects.filter(ticket=t).values_list("old", "new")) == [("Cleo", ""), ("", "Ada")]


def test_customer_reply_on_unassigned_ticket_is_routed_like_a_new_one(tenant, team, queue):
    t = ticket(tenant, queue, status=Status.OPEN)
    assert routing.route_customer_reply(t) == team["ada"]


def test_away_timeout_returns_new_and_open_tickets_to_the_queue(tenant, team, queue):
    other = Queue.objects.create(tenant=tenant, name="Keep", away_timeout_minutes=0)
    cleo = membership(team["cleo"], tenant)
    open_ticket = ticket(tenant, queue, assignee=team["cleo"], status=Status.OPEN)
    new_ticket = ticket(tenant, queue, assignee=team["cleo"], status=Status.NEW)
    pending = ticket(tenant, queue, assignee=team["cleo"], status=Status.PENDING)
    no_timeout = ticket(tenant, other, assignee=team["cleo"], status=Status.OPEN)
    adas = ticket(tenant, queue, assignee=team["ada"], status=Status.OPEN)
    routing.record_availability(cleo, now=T0)

    assert routing.return_tickets_of_away_agents(now=T0 + dt.timedelta(minutes=29)) == 0
    assert routing.return_tickets_of_away_agents(now=T0 + dt.timedelta(minutes=30)) == 2

    assignees = dict(Ticket.objects.values_list("pk", "assignee"))
    assert assignees[open_ticket.pk] is None and assignees[new_ticket.pk] is None
    assert assignees[pending.pk] == team["cleo"].pk  # waits for the customer, not for Cleo
    assert assignees[no_timeout.pk] == team["cleo"].pk
    assert assignees[adas.pk] == team["ada"].pk
    assert TicketEvent.objects.filter(ticket=open_ticket, field="assignee", old="Cleo", new="").count() == 1
    assert routing.return_tickets_of_away_agents(now=T0 + dt.timedelta(minutes=90)) == 0  # idempotent


def test_sweep_starts_the_away_clock_itself_when_availability_changed_elsewhere(tenant, team, queue):
    t = ticket(tenant, queue, assignee=team["cleo"], status=Status.OPEN)
    # Cleo was set away without record_availability: the first sweep notices and starts her clock.
    with mock.patch("django.utils.timezone.now", return_value=T0):
        assert tasks.return_tickets_of_away_agents.delay().get() == 0
    assert AgentStatus.objects.get(membership__user=team["cleo"]).away_since == T0
    with mock.patch("django.utils.timezone.now", return_value=T0 + dt.timedelta(minutes=31)):
        assert tasks.return_tickets_of_away_agents.delay().get() == 1
    assert Ticket.objects.get(pk=t.pk).assignee is None


def test_agent_back_before_the_timeout_keeps_tickets_and_clock_restarts(tenant, team, queue):
    cleo = membership(team["cleo"], tenant)
    t = ticket(tenant, queue, assignee=team["cleo"], status=Status.OPEN)
    routing.record_availability(cleo, now=T0)
    cleo.is_available = True
    cleo.save()
    assert routing.return_tickets_of_away_agents(now=T0 + dt.timedelta(minutes=10)) == 0
    assert AgentStatus.objects.get(membership=cleo).away_since is None
    cleo.is_available = False
    cleo.save()
    routing.record_availability(cleo, now=T0 + dt.timedelta(minutes=20))
    assert routing.return_tickets_of_away_agents(now=T0 + dt.timedelta(minutes=45)) == 0
    assert routing.return_tickets_of_away_agents(now=T0 + dt.timedelta(minutes=50)) == 1
    assert Ticket.objects.get(pk=t.pk).assignee is None


def test_away_timeout_of_one_tenant_does_not_touch_another(tenant, team, queue, other_tenant, outsider):
    theirs = Queue.objects.create(tenant=other_tenant, name="Support", away_timeout_minutes=5)
    t = ticket(other_tenant, theirs, assignee=outsider, status=Status.OPEN)
    routing.record_availability(membership(team["cleo"], tenant), now=T0)
    routing.return_tickets_of_away_agents(now=T0 + dt.timedelta(hours=5))
    assert Ticket.objects.get(pk=t.pk).assignee == outsider  # the outsider is available in their tenant


def test_replies_first_puts_customer_replies_above_new_tickets(tenant, queue):
    now = timezone.now()
    ago = lambda minutes: now - dt.timedelta(minutes=minutes)  # noqa: E731
    new_recent = ticket(tenant, queue, title="new recent", last_message_at=ago(1))
    new_old = ticket(tenant, queue, title="new old", last_message_at=ago(50))
    reply_old = ticket(
        tenant,
        queue,
        title="reply old",
        status=Status.OPEN,
        first_response_at=ago(200),
        last_message_at=ago(100),
    )
    reply_recent = ticket(
        tenant,
        queue,
        title="reply recent",
        status=Status.OPEN,
        first_response_at=ago(30),
        last_message_at=ago(5),
    )
    answered = ticket(
        tenant,
        queue,
        title="waiting for customer",
        status=Status.PENDING,
        first_response_at=ago(2),
        last_message_at=ago(2),
        last_message_inbound=False,
    )
    qs = Ticket.objects.for_tenant(tenant).open()

    queue.replies_first = True
    ordered = [t.pk for t in qs.in_queue_order(queue)]
    assert ordered == [reply_recent.pk, reply_old.pk, new_recent.pk, answered.pk, new_old.pk]

    queue.replies_first = False
    ordered = [t.pk for t in qs.in_queue_order(queue)]
    assert ordered == [new_recent.pk, answered.pk, reply_recent.pk, new_old.pk, reply_old.pk]
    assert [t.title for t in qs.replies_first("created_at")][:2] == ["reply old", "reply recent"]


def test_beat_runs_the_away_sweep_every_minute_and_auto_close_regularly():
    schedule = {entry["task"]: entry["schedule"] for entry in celery_app.conf.beat_schedule.values()}
    assert schedule["tickets.tasks.return_tickets_of_away_agents"] == 60.0
    assert schedule["tickets.tasks.auto_close_pending_tickets"] <= 3600


def test_automatic_assignment_tells_the_agent_by_mail(tenant, team, queue):
    from mailboxes.models import Mailbox, OutboundEmail

    Mailbox.objects.create(
        tenant=tenant, name="Support", key="SUP", email="support@acme.test", is_default=True
    )
    t = ticket(tenant, queue)
    routing.assign_new_ticket(t)
    assert OutboundEmail.objects.get(ticket=t).to == ["ada@acme.test"]
