"""The auto-close rule: pending tickets with no customer answer for N days are solved with a reason.

A ticket is pending while the agent waits for the customer; the waiting starts at the ticket's last message
(usually the agent's reply), so the rule looks at `last_message_at` and, to be safe, `last_inbound_at`. Each
ticket is claimed with a row lock and a status check, so two runs never solve it (or notify) twice. The
customer gets the resolution notification (`tickets.notifications.ticket_solved`), queued in the outbox in
the same transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from tickets import history, notifications
from tickets.models import AutoCloseRule, Status, Ticket

logger = logging.getLogger(__name__)

BATCH = 500  # per tenant and run; the next run takes the rest


def due_tickets(rule: AutoCloseRule, *, now: datetime | None = None) -> QuerySet[Ticket]:
    """Pending tickets of the rule's tenant whose customer has not answered for `rule.days` days."""
    cutoff = (now or timezone.now()) - timedelta(days=rule.days)
    return Ticket.objects.for_tenant(rule.tenant_id).filter(
        Q(last_inbound_at__isnull=True) | Q(last_inbound_at__lte=cutoff),
        status=Status.PENDING,
        last_message_at__lte=cutoff,
    )


def run(rule: AutoCloseRule, *, now: datetime | None = None) -> int:
    """Solve the rule's due tickets with its reason; returns how many were solved."""
    now = now or timezone.now()
    if not rule.enabled or rule.days < 1:
        return 0
    reason = rule.reason_text
    ids = list(due_tickets(rule, now=now).order_by("last_message_at").values_list("pk", flat=True)[:BATCH])
    solved = sum(1 for pk in ids if _solve(pk, reason))
    AutoCloseRule.objects.filter(pk=rule.pk).update(
        last_run_at=now, tickets_closed=rule.tickets_closed + solved
    )
    if solved:
        logger.info("Auto-close solved %d tickets of tenant %s", solved, rule.tenant_id)
    return solved


def run_all(*, now: datetime | None = None) -> int:
    """Run every enabled rule (the beat task); returns the number of tickets solved."""
    return sum(
        run(rule, now=now) for rule in AutoCloseRule.objects.filter(enabled=True).select_related("reason")
    )


@transaction.atomic
def _solve(ticket_id: int, reason: str) -> bool:
    ticket = (
        Ticket.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("tenant")
        .filter(pk=ticket_id, status=Status.PENDING)
        .first()
    )
    if ticket is None:  # answered, changed or taken by a concurrent run meanwhile
        return False
    history.change_ticket(ticket, actor=None, status=Status.SOLVED)
    old_reason, ticket.close_reason = ticket.close_reason, reason
    Ticket.objects.filter(pk=ticket.pk).update(close_reason=reason)
    history.record(ticket, None, "close_reason", old_reason, reason)
    # The outbox row is written in this transaction: the mail goes out only if the ticket is really solved.
    notifications.ticket_solved(ticket)
    return True
