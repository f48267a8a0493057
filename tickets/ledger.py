"""The inbound ledger's claim: an `InboundMessage` row goes from `stored` to done exactly once.

Intake writes a message's ticket rows and claims its ledger row in the same transaction, with a conditional
UPDATE (only while the row is still `stored`). If another worker processed the message meanwhile, the claim
finds nothing to update, raises `AlreadyClaimed`, and the transaction rolls back: no duplicate ticket entry.
A commit group (`tickets.intake.commit_many`) makes its claims in one statement (`claim_all`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import F
from django.utils import timezone

from helpdesk import rows as bulk
from mailboxes.models import InboundMessage, InboundStatus

if TYPE_CHECKING:
    from tickets.intake import Trace


class AlreadyClaimed(Exception):
    """Another worker processed this message first."""


def claim(
    inbound: InboundMessage,
    *,
    status: str,
    outcome: str,
    ticket_id: int | None,
    trace: Trace,
    message_id: str = "",
) -> None:
    """Mark the ledger row done, only if still `stored`; otherwise someone else processed it: roll back.

    The row also gets the parser's Message-ID (a surrogate from the content hash when the mail had none)."""
    claimed = InboundMessage.objects.filter(pk=inbound.pk, status=InboundStatus.STORED).update(
        message_id=message_id or inbound.message_id,
        status=status,
        outcome=outcome,
        ticket_id=ticket_id,
        trace=trace.steps,
        attempts=F("attempts") + 1,
        processed_at=timezone.now(),
    )
    if not claimed:
        raise AlreadyClaimed()
    _claimed(inbound, status, outcome, ticket_id, trace)


def claim_all(claims: list[tuple[InboundMessage, dict[str, Any]]]) -> None:
    """A commit group's claims (each the keyword arguments of `claim`) in one conditional UPDATE on
    PostgreSQL; if any row is no longer `stored` (another worker took it), the group rolls back and its
    messages are committed one by one."""
    if connection.vendor != "postgresql":
        for inbound, kwargs in claims:
            claim(inbound, **kwargs)
        return
    now = timezone.now()
    rows = [
        (
            inbound.pk,
            c.get("message_id") or inbound.message_id,
            c["status"],
            c["outcome"],
            c["ticket_id"],
            c["trace"].steps,
            now,
        )
        for inbound, c in claims
    ]
    fields = ("message_id", "status", "outcome", "ticket", "trace", "processed_at")
    statement = bulk.update(
        InboundMessage,
        fields,
        rows,
        also="attempts = t.attempts + 1",
        where="t.status = %s",
        params=[InboundStatus.STORED],
    )
    [changed] = bulk.execute_together([statement])
    if changed != len(claims):
        raise AlreadyClaimed()
    for inbound, c in claims:
        _claimed(inbound, c["status"], c["outcome"], c["ticket_id"], c["trace"])


def _claimed(inbound: InboundMessage, status: str, outcome: str, ticket_id: int | None, trace: Trace) -> None:
    inbound.status, inbound.outcome, inbound.ticket_id, inbound.trace = (
        status,
        outcome,
        ticket_id,
        trace.steps,
    )
