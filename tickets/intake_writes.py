"""The ticket-side rows intake writes inside its transaction: new tickets and their numbers, messages and their
attachments, the people taking part, what a customer's reply does to the ticket's status, and what a bounce
does to the outbound mail it reports on. `tickets.intake` decides which of them happen.

`Writes` is one transaction's unit of work. On PostgreSQL it collects the rows and writes them in a few
multi-row statements when the transaction is about to commit (`finish`): a commit group of twenty mails costs
about eight statements instead of eighty. Ticket and message ids come from their sequences up front, so a later
mail of the same transaction threads into a ticket that is not written yet, and `Writes` answers for the
tickets and participants it holds (`ticket`, `takes_part`). Ticket numbers are reserved as a block and the
unused rest handed back at the end; the counter row stays locked until commit, so numbers have no gaps.
Elsewhere (SQLite, the embedded default) every row is written at once. Code that reads these rows back from
the database in the middle of the transaction (routing, notifications) calls `flush` first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection

from helpdesk import rows as bulk
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


def _next_ids(model, count: int) -> list[int]:
    """`count` ids from the model's sequence (PostgreSQL), for rows written later in the transaction."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [model._meta.db_table, model._meta.pk.column, count],
        )
        return [row[0] for row in cur.fetchall()]


class Writes:
    """One intake transaction's ticket rows (see the module docstring). `capacity`: how many mails the
    transaction may write (a commit group's size), which sizes the reservations of numbers and ids."""

    def __init__(self, *, capacity: int = 1) -> None:
        self.capacity = max(1, capacity)
        self.deferred = connection.vendor == "postgresql"
        self._used = 0  # mails written so far
        self._numbers: dict[int, list[int]] = {}  # tenant id -> reserved numbers not given out yet
        self._ids: dict[type, list[int]] = {}
        self._tickets: dict[int, Ticket] = {}  # every ticket this transaction created or read
        self._created: set[int] = set()  # ids of the tickets this transaction created
        self._unwritten: set[int] = set()  # ids of created tickets not in the database yet
        self._taking_part: set[tuple[int, int]] = set()  # (ticket id, contact id) written here
        self._new_tickets: list[Ticket] = []
        self._messages: list[Message] = []
        self._attachments: list[Attachment] = []
        self._participants: list[Participant] = []
        self._activity: dict[int, dict[str, Any]] = {}  # existing ticket id -> the fields to set
        self._events: list[TicketEvent] = []

    # --- what the transaction already holds (threading asks before the database) --------------------------

    def ticket(self, ticket_id: int) -> Ticket | None:
        """The ticket with this id if this transaction created or read it (the same object every time)."""
        return self._tickets.get(ticket_id)

    def keep(self, ticket: Ticket) -> None:
        """Remember a ticket read from the database, so later mail of the transaction sees its changes."""
        self._tickets.setdefault(ticket.pk, ticket)

    def read_tickets(self, tenant, ids) -> None:
        """Read these tickets of the tenant in one query (those the transaction's mail names) and keep them."""
        missing = [pk for pk in ids if pk not in self._tickets]
        for ticket in Ticket.objects.filter(tenant=tenant, pk__in=missing).defer("search_vector"):
            ticket.tenant = tenant  # the same object everywhere: no query for it later
            self.keep(ticket)

    def takes_part(self, ticket: Ticket, contact: Contact) -> bool | None:
        """Whether the contact takes part in the ticket, when this transaction knows; None: ask the database."""
        if ticket.requester_id == contact.pk or (ticket.pk, contact.pk) in self._taking_part:
            return True
        return False if ticket.pk in self._created else None

    # --- the rows ---------------------------------------------------------------------------------------------

    def new_ticket(
        self, inbound, mailbox, subject: str, sender: Contact | None, match, when: datetime
    ) -> Ticket:
        """The ticket a new mail opens, in the mailbox's default queue (closed when it imports as closed)."""
        tenant = inbound.tenant
        closed = bool(mailbox and mailbox.close_automatically)
        title = clean(subject).strip()[:998] or "(no subject)"
        ticket = Ticket(
            tenant=tenant,
            number=self._number(tenant.pk),
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
        if self.deferred:
            ticket.pk = self._next_id(Ticket)
            self._new_tickets.append(ticket)
            self._unwritten.add(ticket.pk)
        else:
            ticket.save(force_insert=True)
        self._tickets[ticket.pk] = ticket
        self._created.add(ticket.pk)
        return ticket

    def add_message(
        self,
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
        """The thread entry of an inbound mail and its attachments (`stored`: (attachment, blob) pairs whose
        bytes are already in storage). `bodies`: the cleaned (text, html)."""
        self._used += 1
        text, html = bodies
        message = Message(
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
        if self.deferred:
            message.pk = self._next_id(Message)
            self._messages.append(message)
        else:
            message.save(force_insert=True)
        files = [
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
        if self.deferred:
            self._attachments += files
        elif files:
            Attachment.objects.bulk_create(files)
        return message

    def add_participants(
        self, ticket: Ticket, sender: Contact | None, parsed, own: set[str], context, *, new: bool
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
        if not new and len(people) == 1 and ticket.requester_id == people[0].pk:
            return  # the requester answering their own ticket already takes part
        rows = []
        for contact in people:
            if (ticket.pk, contact.pk) not in self._taking_part:
                self._taking_part.add((ticket.pk, contact.pk))
                rows.append(Participant(tenant_id=ticket.tenant_id, ticket=ticket, contact=contact))
        if self.deferred:
            self._participants += rows
        elif rows:
            Participant.objects.bulk_create(rows, ignore_conflicts=True)

    def reply_arrived(self, ticket: Ticket, match, mailbox, when: datetime) -> None:
        """A customer's mail joined the ticket: it is active again, and reopens unless the mailbox keeps its
        tickets closed."""
        old = ticket.status
        fields: dict[str, Any] = {
            "last_message_at": when,
            "last_inbound_at": when,
            "last_message_inbound": True,
            "updated_at": when,
        }
        keep_closed = bool(mailbox and mailbox.close_automatically)
        if not keep_closed and (match.reopen or old == Status.PENDING):
            fields.update(status=Status.OPEN, solved_at=None, closed_at=None, close_reason="")
        for name, value in fields.items():
            setattr(ticket, name, value)
        if not self.deferred:
            Ticket.objects.filter(pk=ticket.pk).update(**fields)
        elif ticket.pk not in self._unwritten:  # an unwritten one is inserted with these values
            self._activity.setdefault(ticket.pk, {}).update(fields)
        if fields.get("status") and fields["status"] != old:
            event = TicketEvent(
                tenant_id=ticket.tenant_id, ticket=ticket, field="status", old=old, new=fields["status"]
            )
            if self.deferred:
                self._events.append(event)
            else:
                event.save(force_insert=True)

    # --- writing ----------------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write what is collected so far (before anything reads it back from the database): a statement per
        table, all in one round trip."""
        if not self.deferred:
            return
        statements = [
            bulk.insert(Ticket, self._new_tickets),
            bulk.insert(Message, self._messages),
            bulk.insert(Attachment, self._attachments),
            bulk.insert(Participant, self._participants, ignore_conflicts=True),
            *self._activity_statements(),
            bulk.insert(TicketEvent, self._events),
        ]
        bulk.execute_together(statements)
        self._new_tickets, self._unwritten, self._messages, self._attachments = [], set(), [], []
        self._participants, self._activity, self._events = [], {}, []

    def finish(self) -> None:
        """Write everything and hand back the ticket numbers reserved but not used; call once, last."""
        self.flush()
        for tenant_id, unused in self._numbers.items():
            if unused:
                TicketCounter.give_back(tenant_id, len(unused))
        self._numbers = {}

    def _activity_statements(self) -> list[bulk.Statement]:
        """One UPDATE per set of fields (replies that reopen change four more than the others)."""
        by_fields: dict[tuple[str, ...], list[tuple]] = {}
        for pk, fields in self._activity.items():
            names = tuple(sorted(fields))
            by_fields.setdefault(names, []).append((pk, *(fields[n] for n in names)))
        return [bulk.update(Ticket, names, rows) for names, rows in by_fields.items()]

    def _number(self, tenant_id: int) -> int:
        numbers = self._numbers.setdefault(tenant_id, [])
        if not numbers:
            numbers += TicketCounter.reserve(tenant_id, max(1, self.capacity - self._used))
        return numbers.pop(0)

    def _next_id(self, model) -> int:
        ids = self._ids.setdefault(model, [])
        if not ids:
            ids += _next_ids(model, max(1, self.capacity - self._used))
        return ids.pop(0)


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
