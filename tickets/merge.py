"""Merging duplicate tickets into one, and splitting a message off into a ticket of its own."""

from django.db import transaction
from django.utils import timezone

from mailboxes.models import InboundMessage, OutboundEmail
from tickets import history, search
from tickets.models import Message, Participant, Status, Ticket, TicketCounter


class MergeError(Exception):
    """The merge cannot be done; the message says why in plain words."""


def final_target(ticket: Ticket) -> Ticket:
    """Follow merged_into links to the ticket that lives on."""
    seen = {ticket.pk}
    while ticket.merged_into_id and ticket.merged_into_id not in seen:
        seen.add(ticket.merged_into_id)
        ticket = Ticket.objects.get(pk=ticket.merged_into_id)
    return ticket


@transaction.atomic
def merge_tickets(source: Ticket, target: Ticket, *, actor) -> Ticket:
    """Move the source's whole thread, participants and tags into the target; the source is closed as merged.

    Replies to the source's Message-IDs thread into the target afterwards, because they follow the messages.
    """
    if source.tenant_id != target.tenant_id:
        raise MergeError("Tickets of different workspaces cannot be merged.")
    if source.pk == target.pk:
        raise MergeError("A ticket cannot be merged into itself.")
    if target.merged_into_id:
        raise MergeError(f"#{target.number} was itself merged; merge into the ticket it was merged into.")
    if source.merged_into_id:
        raise MergeError(f"#{source.number} was already merged.")
    # Lock both rows in a fixed order so two crossing merges cannot interleave.
    locked = {
        t.pk: t
        for t in Ticket.objects.select_for_update().filter(pk__in=[source.pk, target.pk]).order_by("pk")
    }
    if locked[target.pk].merged_into_id or locked[source.pk].merged_into_id:
        raise MergeError("One of the tickets was merged in the meantime.")

    Message.objects.filter(ticket=source).update(ticket=target)
    OutboundEmail.objects.filter(ticket=source).update(ticket=target)
    InboundMessage.objects.filter(ticket=source).update(ticket=target)
    have = set(Participant.objects.filter(ticket=target).values_list("contact_id", flat=True))
    for contact_id in Participant.objects.filter(ticket=source).values_list("contact_id", flat=True):
        if contact_id not in have:
            Participant.objects.create(tenant_id=target.tenant_id, ticket=target, contact_id=contact_id)
    source_tags = set(source.tags.all())
    if source_tags - set(target.tags.all()):
        target.tags.add(*source_tags)

    now = timezone.now()
    if source.last_inbound_at and (
        not target.last_inbound_at or source.last_inbound_at > target.last_inbound_at
    ):
        target.last_inbound_at = source.last_inbound_at
        target.save(update_fields=["last_inbound_at"])
    _refresh_last_message(target, now)

    old_status = source.status
    source.merged_into = target
    source.status = Status.CLOSED
    source.closed_at = now
    source.close_reason = f"Merged into #{target.number}"
    source.updated_at = now
    source.save(update_fields=["merged_into", "status", "closed_at", "close_reason", "updated_at"])
    history.record(source, actor, "merged_into", "", f"#{target.number} {target.title}")
    if old_status != Status.CLOSED:
        history.record(source, actor, "status", Status(old_status).label, Status.CLOSED.label)
    history.record(target, actor, "merged_from", "", f"#{source.number} {source.title}")
    search.reindex(target)
    search.reindex(source)
    return target


@transaction.atomic
def split_message(message: Message, *, actor) -> Ticket:
    """A new ticket holding `message` (moved out of its ticket), linked to the original as related."""
    original = message.ticket
    if Message.objects.filter(ticket=original).count() < 2:
        raise MergeError("This is the only message of the ticket; there is nothing to split off.")
    now = timezone.now()
    ticket = Ticket.objects.create(
        tenant_id=original.tenant_id,
        number=TicketCounter.next_number(original.tenant),
        title=(message.subject or f"Split from #{original.number}")[:998],
        status=Status.OPEN,
        priority=original.priority,
        queue=original.queue,
        mailbox=original.mailbox,
        requester=message.contact or original.requester,
        customer=(message.contact.customer if message.contact else None) or original.customer,
        related_to=original,
        created_at=message.created_at,
        updated_at=now,
        last_message_at=message.created_at,
        last_inbound_at=message.created_at if message.kind == "inbound" else None,
        last_message_inbound=message.kind == "inbound",
    )
    message.ticket = ticket
    message.save(update_fields=["ticket"])
    OutboundEmail.objects.filter(ticket_message=message).update(ticket=ticket)
    if message.contact_id:
        Participant.objects.get_or_create(
            tenant_id=ticket.tenant_id, ticket=ticket, contact_id=message.contact_id
        )
    _refresh_last_message(original, now)
    history.record(ticket, actor, "split_from", "", f"#{original.number} {original.title}")
    history.record(original, actor, "split_to", "", f"#{ticket.number} {ticket.title}")
    search.reindex(ticket)
    search.reindex(original)
    return ticket


def _refresh_last_message(ticket: Ticket, now) -> None:
    last = Message.objects.filter(ticket=ticket).order_by("-created_at", "-id").first()
    if last is not None:
        ticket.last_message_at = last.created_at
        ticket.last_message_inbound = last.kind == "inbound"
    ticket.updated_at = now
    ticket.save(update_fields=["last_message_at", "last_message_inbound", "updated_at"])
