"""Thin Celery tasks of the inbound pipeline: they take ids and call the domain modules."""

from celery import shared_task

from mailboxes import polling


@shared_task(acks_late=True, ignore_result=True)
def schedule_polls() -> int:
    """Beat, every few seconds: enqueue a poll for each active mailbox whose interval has passed."""
    ids = polling.due_mailbox_ids()
    for mailbox_id in ids:
        poll_mailbox.delay(mailbox_id)
    return len(ids)


@shared_task(acks_late=True, ignore_result=True)
def poll_mailbox(mailbox_id: int) -> None:
    polling.poll(mailbox_id)


@shared_task(acks_late=True, ignore_result=True)
def process_inbound(inbound_id: int) -> None:
    """(Re)process one ledger row, e.g. after an admin pressed "reprocess"; a no-op once processed."""
    from mailboxes.models import InboundMessage
    from tickets import intake

    intake.receive(InboundMessage.objects.select_related("tenant", "mailbox").get(pk=inbound_id))
