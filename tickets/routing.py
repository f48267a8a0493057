"""Who works a ticket: automatic assignment in a queue, replies back to their agent, and the away timeout.

A queue routes manually (nobody is picked) or automatically among its members who are available and may
write to customers: round robin (the member after `Queue.last_assigned`, by membership id, wrapping around)
or fewest open tickets (ties go to the lower membership id). Agents switch `Membership.is_available`; the
time they went away lives in `AgentStatus.away_since`, set by `record_availability` (precise) or noticed by
the periodic sweep (to within its period). A ticket whose agent stays away longer than its queue's
`away_timeout_minutes` goes back to the queue, unassigned.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Membership, Role, User
from tickets import history, notifications
from tickets.models import AgentStatus, Queue, RoutingMode, Status, Ticket, TicketEvent

logger = logging.getLogger(__name__)

# Tickets waiting for their agent; pending ones wait for the customer and keep their assignee until they reply.
NEEDS_AGENT = (Status.NEW, Status.OPEN)


def eligible_members(queue: Queue):
    """Members of the queue who may get tickets now: available, and allowed to answer customers."""
    return queue.members.filter(is_available=True).exclude(role=Role.LIGHT_AGENT).select_related("user")


def pick_member(queue: Queue) -> Membership | None:
    """The member the queue's routing mode would give the next ticket to; None for manual queues or nobody."""
    candidates = eligible_members(queue).order_by("pk")
    if queue.routing == RoutingMode.ROUND_ROBIN:
        after = candidates.filter(pk__gt=queue.last_assigned_id).first() if queue.last_assigned_id else None
        return after or candidates.first()
    if queue.routing == RoutingMode.FEWEST_OPEN:
        open_count = (
            Ticket.objects.for_tenant(queue.tenant_id)
            .open()
            .filter(assignee=OuterRef("user"))
            .values("assignee")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            candidates.annotate(open_count=Coalesce(Subquery(open_count, output_field=IntegerField()), 0))
            .order_by("open_count", "pk")
            .first()
        )
    return None


def may_route(ticket: Ticket, queue: Queue | None, *, reply: bool) -> bool:
    """Whether `assign_new_ticket` (a new ticket) or `route_customer_reply` (`reply`) could change who holds
    the ticket; False is certain, so intake skips them (and their queries) for most mail."""
    if not ticket.is_open or queue is None:
        return False
    if ticket.assignee_id:
        return reply and queue.away_timeout_minutes > 0
    return queue.routing != RoutingMode.MANUAL


def assign_new_ticket(ticket: Ticket) -> User | None:
    """Give a new ticket to an agent by its queue's routing; returns the assignee (None: stays in the queue).

    The intake calls this in the transaction that creates the ticket. It locks the queue row so concurrent
    intakes take turns in the round robin. A ticket that already has an assignee, or is not open (imported
    as closed), is left alone.
    """
    if ticket.assignee_id or ticket.queue_id is None or not ticket.is_open:
        return ticket.assignee
    with transaction.atomic():
        queue = Queue.objects.select_for_update().filter(pk=ticket.queue_id).first()
        if queue is None or queue.routing == RoutingMode.MANUAL:
            return None
        member = pick_member(queue)
        if member is None:
            return None
        queue.last_assigned = member
        queue.save(update_fields=["last_assigned"])
        _set_assignee(ticket, member.user)
        notifications.assigned(ticket, member.user)  # queued in the outbox with the assignment
    return member.user


def route_customer_reply(ticket: Ticket, *, now: datetime | None = None) -> User | None:
    """A customer replied: the ticket stays with its agent, unless they have been away past the queue's timeout.

    The intake calls this after threading a reply into an existing ticket. An unassigned ticket (or one just
    taken back from an away agent) is routed like a new one.
    """
    if not ticket.is_open:  # a reply kept in a closed ticket (archive mailbox) changes nothing
        return ticket.assignee
    now = now or timezone.now()
    if ticket.assignee_id and ticket.queue_id and _away_too_long(ticket, now):
        _set_assignee(ticket, None)
    if ticket.assignee_id is None:
        return assign_new_ticket(ticket)
    return ticket.assignee


def record_availability(membership: Membership, *, now: datetime | None = None) -> None:
    """Start or stop the member's away clock; call when `is_available` changes (the sweep catches the rest)."""
    away_since = None if membership.is_available else (now or timezone.now())
    AgentStatus.objects.update_or_create(
        membership=membership, defaults={"tenant_id": membership.tenant_id, "away_since": away_since}
    )


def return_tickets_of_away_agents(*, now: datetime | None = None) -> int:
    """Unassign new and open tickets whose agent has been away longer than their queue's timeout; returns how many.

    Periodic (Celery beat, every minute). Idempotent: a second run finds nothing more to do.
    """
    now = now or timezone.now()
    sync_away_clocks(now=now)
    returned = 0
    timeouts = (
        Queue.objects.filter(away_timeout_minutes__gt=0)
        .values_list("away_timeout_minutes", flat=True)
        .distinct()
    )
    for minutes in sorted(set(timeouts)):
        away_past_timeout = AgentStatus.objects.filter(
            tenant=OuterRef("tenant"),
            membership__user=OuterRef("assignee"),
            membership__is_available=False,
            away_since__lte=now - timedelta(minutes=minutes),
        )
        tickets = Ticket.objects.filter(
            queue__away_timeout_minutes=minutes, status__in=NEEDS_AGENT, assignee__isnull=False
        ).filter(Exists(away_past_timeout))
        returned += _unassign(tickets, now=now)
    if returned:
        logger.info("Returned %d tickets of away agents to their queues", returned)
    return returned


def sync_away_clocks(*, now: datetime) -> None:
    """Note `now` as the start of absence for members seen away without a clock, and stop clocks of those back."""
    AgentStatus.objects.filter(away_since__isnull=False, membership__is_available=True).update(
        away_since=None
    )
    newly_away = Membership.objects.filter(is_available=False).exclude(agent_status__away_since__isnull=False)
    AgentStatus.objects.bulk_create(
        [
            AgentStatus(tenant_id=t, membership_id=m, away_since=now)
            for m, t in newly_away.values_list("pk", "tenant_id")
        ],
        update_conflicts=True,
        unique_fields=["membership"],
        update_fields=["away_since"],
    )


# --- internals ------------------------------------------------------------------------------------------------


def _away_too_long(ticket: Ticket, now: datetime) -> bool:
    minutes = Queue.objects.filter(pk=ticket.queue_id).values_list("away_timeout_minutes", flat=True).first()
    if not minutes:
        return False
    return AgentStatus.objects.filter(
        tenant_id=ticket.tenant_id,
        membership__user_id=ticket.assignee_id,
        membership__is_available=False,
        away_since__lte=now - timedelta(minutes=minutes),
    ).exists()


def _set_assignee(ticket: Ticket, user: User | None) -> None:
    old = ticket.assignee
    ticket.assignee = user
    ticket.updated_at = timezone.now()
    ticket.save(update_fields=["assignee", "updated_at"])
    history.record(
        ticket, None, "assignee", old.display_name if old else "", user.display_name if user else ""
    )


@transaction.atomic
def _unassign(tickets, *, now: datetime) -> int:
    rows = list(
        tickets.select_for_update(skip_locked=True, of=("self",))
        .select_related("assignee")
        .only("pk", "tenant_id", "assignee__name", "assignee__email")
    )
    if not rows:
        return 0
    Ticket.objects.filter(pk__in=[t.pk for t in rows]).update(assignee=None, updated_at=now)
    TicketEvent.objects.bulk_create(
        TicketEvent(
            tenant_id=t.tenant_id,
            ticket_id=t.pk,
            field="assignee",
            old=t.assignee.display_name,
            new="",
            created_at=now,
        )
        for t in rows
    )
    return len(rows)
