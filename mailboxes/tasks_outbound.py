"""Thin Celery tasks of the outbox and its clocks: they take ids and call the domain modules."""

from celery import shared_task

from mailboxes import outbound
from mailboxes.models import OutboundEmail


@shared_task(acks_late=True, ignore_result=True)
def send_outbound(outbound_id: int) -> None:
    """Send one queued mail (enqueued on commit); a no-op when it is no longer due."""
    outbound.send(OutboundEmail.objects.get(pk=outbound_id))


@shared_task(acks_late=True, ignore_result=True)
def send_mailbox_batch(mailbox_id: int) -> None:
    """Every due mail of one mailbox over one SMTP connection."""
    outbound.send_batch(mailbox_id)


@shared_task(acks_late=True, ignore_result=True)
def dispatch_due_outbound() -> int:
    """Beat: deferred mail whose retry time has come (and queued mail nobody picked up) to batch senders."""
    return len(outbound.dispatch_due())


@shared_task(acks_late=True, ignore_result=True)
def recover_stuck_outbound() -> int:
    """Beat: mail left in `sending` by a worker that died goes back to the queue, or to `uncertain`."""
    result = outbound.recover_stuck()
    return len(result.requeued) + len(result.uncertain)


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=5)
def append_sent_copy(self, outbound_id: int) -> None:
    """Put a sent mail into the mailbox's IMAP Sent folder (once)."""
    try:
        outbound.append_to_sent(OutboundEmail.objects.get(pk=outbound_id))
    except Exception as exc:
        raise self.retry(exc=exc, countdown=60 * 2**self.request.retries) from exc


@shared_task(acks_late=True, ignore_result=True)
def check_sla_breaches() -> int:
    """Beat: find tickets that just missed an SLA target and alert their assignee (once per breach)."""
    from tickets import sla

    return len(sla.check_breaches())
