"""The inbound ledger's claim: an `InboundMessage` row goes from `stored` to done exactly once.

Intake writes a message's ticket rows and claims its ledger row in the same transaction, with a conditional
UPDATE (only while the row is still `stored`). If another worker processed the message meanwhile, the claim
finds nothing to update, raises `AlreadyClaimed`, and the transaction rolls back: no duplicate ticket entry.
A commit group (`tickets.intake.commit_many`) collects its claims and makes them in one statement.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from django.db import connection
from django.db.models import F
from django.utils import timezone

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
    deferred: list | None = None,
) -> None:
    """Mark the ledger row done, only if still `stored`; otherwise someone else processed it: roll back.

    The row also gets the parser's Message-ID (a surrogate from the content hash when the mail had none).
    `deferred`: a commit group's list; the claim is added to it and made by `claim_all` before COMMIT."""
    now = timezone.now()
    if deferred is not None:
        deferred.append(
            (inbound.pk, message_id or inbound.message_id, status, outcome, ticket_id, trace.steps, now)
        )
        inbound.status, inbound.outcome, inbound.ticket_id, inbound.trace = (
            status,
            outcome,
            ticket_id,
            trace.steps,
        )
        return
    claimed = InboundMessage.objects.filter(pk=inbound.pk, status=InboundStatus.STORED).update(
        message_id=message_id or inbound.message_id,
        status=status,
        outcome=outcome,
        ticket_id=ticket_id,
        trace=trace.steps,
        attempts=F("attempts") + 1,
        processed_at=now,
    )
    if not claimed:
        raise AlreadyClaimed()
    inbound.status, inbound.outcome, inbound.ticket_id, inbound.trace = (
        status,
        outcome,
        ticket_id,
        trace.steps,
    )


def claim_all(claims: list[tuple]) -> None:
    """A commit group's claims in one conditional UPDATE; if any row is no longer `stored` (another worker
    took it), the group rolls back and its messages are committed one by one."""
    table = InboundMessage._meta.db_table
    values = ", ".join(["(%s::bigint, %s, %s, %s, %s::bigint, %s::jsonb, %s::timestamptz)"] * len(claims))
    params = [
        value
        for pk, message_id, status, outcome, ticket_id, steps, when in claims
        for value in (pk, message_id, status, outcome, ticket_id, json.dumps(steps), when)
    ]
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {table} AS m SET message_id = v.message_id, status = v.status, outcome = v.outcome, "  # noqa: S608
            "ticket_id = v.ticket_id, trace = v.trace, attempts = m.attempts + 1, processed_at = v.processed_at "
            f"FROM (VALUES {values}) AS v(id, message_id, status, outcome, ticket_id, trace, processed_at) "
            "WHERE m.id = v.id AND m.status = %s",
            [*params, InboundStatus.STORED],
        )
        if cur.rowcount != len(claims):
            raise AlreadyClaimed()
