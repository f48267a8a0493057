"""Quarantine: inbound mail kept out of tickets with a reason an admin can read, reprocessed or discarded
later (`mailboxes.views_quarantine` is the admin's list)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from mailboxes.models import InboundMessage, InboundStatus, Mailbox
from tickets.intake_run import Outcome, Trace

QUARANTINED = "quarantined"


def quarantine(inbound: InboundMessage, reason: str, trace: Trace | None = None) -> Outcome:
    """Keep the message out of tickets with a reason an admin can read; reprocessable later."""
    trace = trace or Trace()
    trace.step("quarantine", reason)
    with transaction.atomic():
        claimed = InboundMessage.objects.filter(pk=inbound.pk, status=InboundStatus.STORED).update(
            status=InboundStatus.QUARANTINED,
            outcome=QUARANTINED,
            quarantine_reason=reason[:2000],
            trace=trace.steps,
            attempts=F("attempts") + 1,
            processed_at=timezone.now(),
        )
        if claimed and inbound.mailbox_id:
            Mailbox.objects.filter(pk=inbound.mailbox_id).update(
                messages_quarantined=F("messages_quarantined") + 1
            )
    if claimed:
        inbound.status, inbound.outcome, inbound.quarantine_reason = (
            InboundStatus.QUARANTINED,
            QUARANTINED,
            reason,
        )
    else:
        inbound.refresh_from_db()
    return Outcome(QUARANTINED, reason=reason)


def reprocess(inbound: InboundMessage) -> Outcome:
    """Run a quarantined (or stored) message through the pipeline again; idempotent. If the pipeline cannot
    run (storage or database out of reach), the message goes back to quarantine as it was, and that error
    is raised."""
    reason = inbound.quarantine_reason
    reopened = InboundMessage.objects.filter(pk=inbound.pk, status=InboundStatus.QUARANTINED).update(
        status=InboundStatus.STORED, quarantine_reason=""
    )
    inbound.refresh_from_db()
    from tickets.intake import receive

    try:
        return receive(inbound)
    except Exception:
        if reopened:
            InboundMessage.objects.filter(pk=inbound.pk, status=InboundStatus.STORED).update(
                status=InboundStatus.QUARANTINED, quarantine_reason=reason
            )
        raise


def discard(inbound: InboundMessage) -> None:
    """An admin decided a quarantined message is junk: keep the ledger row (and raw) but mark it discarded."""
    InboundMessage.objects.filter(pk=inbound.pk, status=InboundStatus.QUARANTINED).update(
        status=InboundStatus.DISCARDED, outcome="discarded"
    )
    inbound.refresh_from_db()
