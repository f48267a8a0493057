"""The ticket-side rows intake writes for one inbound message, inside its transaction: a new ticket and its
number, the message and its attachments, the people taking part, what a customer's reply does to the ticket's status, and what a bounce does
to the outbound mail it reports on. `tickets.intake` decides which of them happen."""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from mailboxes.models import OutboundEmail, OutboundStatus
from tickets import contacts, threading
from tickets.models import (
    Attachment,
    Contact,
    Message,
    MessageKind,
    Participant,
    Status,
    Ticket,
    TicketCounter,
    TicketEvent,
)


def clean(text: str) -> str:
    """Text PostgreSQL can store: without NUL characters (a hostile mail may carry them anywhere)."""
    return text.replace("\x00", "") if text and "\x00" in text else (text or "")


def next_number(tenant) -> int:
    """The next ticket number in one statement (the counter row stays locked until commit)."""
    table = TicketCounter._meta.db_table
    if connection.vendor in ("postgresql", "sqlite"):
        with connection.cursor() as cur:
            cur.execute(
                f"INSERT INTO {table} (tenant_id, last_number) VALUES (%s, 1001) "  # noqa: S608
                f"ON CONFLICT (tenant_id) DO UPDATE SET last_number = {table}.last_number + 1 "
                "RETURNING last_number",
                [tenant.pk],
            )
            return cur.fetchone()[0]
    return TicketCounter.next_number(tenant)


def new_ticket(inbound, mailbox, subject: str, sender: Contact | None, match, when: datetime) -> Ticket:
    """The ticket a new mail opens, in the mailbox's default queue (closed when it imports as closed)."""
    tenant = inbound.tenant
    closed = bool(mailbox and mailbox.close_automatically)
    title = clean(subject).strip()[:998] or "(no subject)"
    ticket = Ticket(
        tenant=tenant,
        number=next_number(tenant),
        title=title,
        status=Status.CLOSED if closed else Status.NEW,
        queue_id=mailbox.default_queue_id if mailbox else None,
        mailbox=mailbox,
        requester=sender,
        customer_id=sender.customer_id if sender else None,
        related_to=match.related_to,
        created_at=when,
        updated_at=when,
        last_message_at=when,
        last_inbound_at=when,
        last_message_inbound=True,
        closed_at=when if closed else None,
        close_reason="imported as closed" if closed else "",
    )
    ticket.save(force_insert=True)
    return ticket


def add_participants(
    ticket: Ticket, sender: Contact | None, parsed, own: set[str], context, *, new: bool
) -> None:
    """The sender and the people they copied take part (and may thread in); our own addresses never do."""
    people: list[Contact] = [sender] if sender else []
    for addr in [*parsed.cc, *parsed.to][:20]:
        email = contacts.normalize_address(addr.address)
        if email and email not in own and (sender is None or email != sender.email):
            contact = contacts.contact_for(
                ticket.tenant, email, addr.name, cache=context.domains, known=context.lookups.contacts
            )
            if contact is not None:
                people.append(contact)
    if not people:
        return
    if not new and len(people) == 1 and ticket.requester_id == people[0].pk:
        return  # the requester answering their own ticket already takes part (one query saved)
    Participant.objects.bulk_create(
        [Participant(tenant_id=ticket.tenant_id, ticket=ticket, contact=c) for c in people],
        ignore_conflicts=True,
    )


def reply_arrived(ticket: Ticket, match, mailbox, when: datetime) -> None:
    old = ticket.status
    fields = {
        "last_message_at": when,
        "last_inbound_at": when,
        "last_message_inbound": True,
        "updated_at": when,
    }
    keep_closed = bool(mailbox and mailbox.close_automatically)
    if not keep_closed and (match.reopen or old == Status.PENDING):
        fields.update(status=Status.OPEN, solved_at=None, closed_at=None, close_reason="")
    Ticket.objects.filter(pk=ticket.pk).update(**fields)
    for name, value in fields.items():
        setattr(ticket, name, value)
    if fields.get("status") and fields["status"] != old:
        TicketEvent.objects.create(
            tenant_id=ticket.tenant_id, ticket=ticket, field="status", old=old, new=fields["status"]
        )


def record_bounce(tenant_id: int, bounce, trace) -> None:
    """A bounce reports a mail we sent: mark that outbound row failed with the server's diagnostic."""
    original = getattr(bounce, "original_message_id", "") or ""
    if not original:
        return
    if not getattr(bounce, "is_permanent", True):
        trace.step("bounce", f"delay report for {original}: the outbound mail stays as it is")
        return
    diagnostic = (
        getattr(bounce, "diagnostic", "")
        or getattr(bounce, "diagnostic_code", "")
        or getattr(bounce, "status", "")
        or "the receiving server returned the message"
    )
    recipient = getattr(bounce, "recipient", "") or ", ".join(getattr(bounce, "recipients", ()) or ())
    norm = threading.normalize_id(original)
    updated = (
        OutboundEmail.objects.filter(tenant_id=tenant_id, message_id__in=[norm, f"<{norm}>"])
        .exclude(status=OutboundStatus.FAILED)
        .update(
            status=OutboundStatus.FAILED,
            error_message=f"Bounced{f' by {recipient}' if recipient else ''}: {diagnostic}"[:2000],
            error_advice="Check the recipient's address, or contact them another way.",
        )
    )
    trace.step("bounce", f"original {original}: {'outbound marked failed' if updated else 'no outbound row'}")


def add_message(
    inbound,
    ticket: Ticket,
    parsed,
    *,
    automatic: bool,
    sender: Contact | None,
    sender_addr: str,
    bodies: tuple[str, str],
    stored: list,
    signal: str,
    when: datetime,
) -> Message:
    """The thread entry of an inbound mail and its attachments (`stored`: (attachment, blob) pairs whose bytes
    are already in storage). `bodies`: the cleaned (text, html)."""
    text, html = bodies
    message = Message.objects.create(
        tenant=inbound.tenant,
        ticket=ticket,
        kind=MessageKind.AUTOMATIC if automatic else MessageKind.INBOUND,
        contact=sender,
        from_addr=sender_addr[:320],
        from_name=clean(parsed.from_addr.name if parsed.from_addr else "")[:200],
        to=[a.address for a in parsed.to][:200],
        cc=[a.address for a in parsed.cc][:200],
        subject=clean(parsed.subject)[:998],
        text=text,
        html=html,
        message_id=parsed.message_id[:998],
        in_reply_to=" ".join(parsed.in_reply_to)[:998],
        references=list(parsed.references)[:100],
        threading_signal=signal[:32],
        inbound=inbound,
        sent_date=parsed.date,
        created_at=when,
    )
    if stored:
        Attachment.objects.bulk_create(
            [
                Attachment(
                    tenant=inbound.tenant,
                    message=message,
                    filename=att.filename[:255],
                    content_type=att.content_type[:255],
                    size=blob.size,
                    sha256=blob.sha256,
                    storage_key=blob.key,
                    content_id=(att.content_id or "")[:255],
                    is_inline=att.is_inline,
                )
                for att, blob in stored
            ]
        )
    return message
