"""Mail -> ticket: turn one stored inbound message into a new ticket, a reply, an automatic mail or quarantine.

`receive(inbound)` is the whole processing step of the inbound pipeline (DESIGN.md section 3). The raw bytes
are already safe in object storage and the `InboundMessage` row is committed, so anything that goes wrong
here is recoverable: the message is quarantined with its reason and can be reprocessed.

Order of work, and why:
1. parse (pure) and classify, outside any transaction;
2. upload attachments to storage (S3 I/O, so also outside the transaction; content-addressed, so a crash
   leaves at most an orphan blob);
3. ONE transaction: dedupe, contact, threading, ticket, message, attachments, participants, bounce
   bookkeeping (`tickets.intake_writes`), and finally the claim of the ledger row (`tickets.ledger`: status
   stored -> processed, a conditional UPDATE: if another worker got there first we roll back and change
   nothing). The poller commits twenty messages to a transaction (`commit_many`), whose rows are written
   together just before the claim;
4. after the commit: auto-reply, search index, and (in the poller) the after-import action on the server.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from mailboxes import blobs
from mailboxes.models import (
    InboundMessage,
    InboundStatus,
)
from tickets import contacts, ledger, routing, threading
from tickets.intake_run import Context, Outcome, Prepared, Trace
from tickets.intake_writes import Writes, clean, record_bounce
from tickets.models import Message, Ticket
from tickets.quarantine import quarantine

log = logging.getLogger(__name__)

LARGE_MESSAGE = 4 * 1024 * 1024  # above this, big attachments are streamed past the parser
NEW_TICKET = "new-ticket"
REPLY = "reply"
AUTOMATIC = "automatic"
DUPLICATE = "duplicate"
UNIQUE_MESSAGE_ID = "tickets_message_unique_inbound_id"  # the constraint that makes a stored mail unique


class Quarantine(Exception):
    """Raised inside processing for a message we keep but cannot turn into a ticket entry."""


# --- public entry points ------------------------------------------------------------------------------------


def receive(inbound: InboundMessage, raw: bytes | None = None, *, context: Context | None = None) -> Outcome:
    """Process one stored inbound message exactly once; never raises for a bad message (quarantines it)."""
    context = context or Context()
    prepared = prepare(inbound, raw, context=context)
    if isinstance(prepared, Outcome):
        return prepared
    if context.uploader is not None:
        context.uploader.wait_for(prepared.digests)
    outcome = commit(prepared, context=context)
    if not context.defer:
        context.flush()
    return outcome


def prepare(
    inbound: InboundMessage,
    raw: bytes | None = None,
    *,
    context: Context,
    parsed: Any = None,
    parse_seconds: float = 0.0,
) -> Prepared | Outcome:
    """Phase one, no transaction: parse, classify, start the attachment uploads (the caller waits for them
    before `commit`). Returns an Outcome instead when the message is already done or must be quarantined.
    `parsed`: the result of `parsing.parse(raw)` when the caller already has it (it took `parse_seconds`)."""
    trace = Trace()
    if inbound.status != InboundStatus.STORED:
        return Outcome(inbound.outcome or inbound.status, inbound.ticket_id)
    if parsed is None and raw is None:
        try:
            raw = blobs.read(inbound.raw_key)
        except blobs.Missing:
            return quarantine(inbound, "the raw message is missing from storage", trace)
        trace.step("load", f"{len(raw)} bytes from storage")
    try:
        from mailboxes import parsing

        if parsed is not None:
            trace.include(parse_seconds)
            return _prepare(inbound, parsed, trace, context, {})
        streamed: dict = {}
        if len(raw) > LARGE_MESSAGE:
            from mailboxes.inbound import stream_large_parts

            raw, streamed = stream_large_parts(raw)  # big attachments go to storage as they are decoded
            if streamed:
                trace.step("stream", f"{len(streamed)} large attachment(s) decoded straight to storage")
        parsed = parsing.parse(raw)
        del raw  # the caller keeps no reference: a big message is held once, not twice
        return _prepare(inbound, parsed, trace, context, streamed)
    except Quarantine as q:
        return quarantine(inbound, str(q), trace)
    except blobs.StorageError:
        raise  # the store, not the message: the poll fails, backs off and tries again
    except Exception as exc:  # a poison message must never stop the others
        log.exception("inbound %s failed", inbound.pk)
        return quarantine(inbound, f"processing failed: {type(exc).__name__}: {exc}", trace)


def commit(prepared: Prepared, *, context: Context) -> Outcome:
    """Phase two: the one transaction that turns the prepared message into ticket data (attachments must
    already be in storage). Never raises for a bad message; a database that fails (connection lost, lock or
    statement timeout, deadlock) is not the message's fault: that raises, and the message stays stored for
    the next poll instead of being quarantined."""
    try:
        with transaction.atomic():
            writes = Writes()
            written = _write(prepared, context, writes)
            writes.finish()
            ledger.claim(prepared.inbound, **written.claim)
    except Exception as exc:
        context.lookups.forget()  # the rollback may have undone what the batch's answers hold
        if database_unavailable(exc):
            raise
        return _not_committed(prepared, exc)
    _committed(prepared, written, context)
    return written.outcome


def commit_many(group: list[Prepared], *, context: Context) -> list[Outcome]:
    """Commit several prepared messages in one transaction: one COMMIT (one WAL flush) for the group instead
    of one each, and no savepoints. If any of them fails the whole group rolls back and each is committed
    on its own, so a bad message still costs only itself. Never raises for a bad message."""
    if len(group) == 1:
        return [commit(group[0], context=context)]
    marks = [len(p.trace.steps) for p in group]
    try:
        with transaction.atomic():
            writes = Writes(capacity=len(group))
            tenant = group[0].inbound.tenant  # a poll batch is one mailbox's
            writes.read_tickets(tenant, context.lookups.ticket_ids(tenant.pk, (p.parsed for p in group)))
            written = [_write(p, context, writes) for p in group]
            writes.finish()
            ledger.claim_all([(p.inbound, w.claim) for p, w in zip(group, written, strict=True)])
    except Exception:
        log.info("a group of %d messages rolled back; committing them one by one", len(group))
        context.lookups.forget()
        for prepared, mark in zip(group, marks, strict=True):
            del prepared.trace.steps[mark:]
            prepared.inbound.status = InboundStatus.STORED  # as the database has it again
        return [commit(p, context=context) for p in group]
    for prepared, done in zip(group, written, strict=True):
        _committed(prepared, done, context)
    return [done.outcome for done in written]


# SQLSTATE classes of a database that failed, not of a statement it refused: connection exception, transaction
# rollback (deadlock, serialization), insufficient resources, operator intervention (shutdown, query cancelled).
_UNAVAILABLE_CLASSES = frozenset({"08", "40", "53", "57"})


def database_unavailable(exc: BaseException) -> bool:
    """Whether the database failed (connection lost, shutting down, a deadlock, a lock or statement timeout)
    rather than refused what this message asked (a limit, bad data): the first is retried, not quarantined."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    return sqlstate is None or sqlstate[:2] in _UNAVAILABLE_CLASSES or sqlstate == "55P03"


def _not_committed(prepared: Prepared, exc: Exception) -> Outcome:
    """What became of a message whose transaction rolled back."""
    inbound, trace = prepared.inbound, prepared.trace
    if isinstance(exc, ledger.AlreadyClaimed):
        inbound.refresh_from_db()
        return Outcome(inbound.outcome or inbound.status, inbound.ticket_id)
    if isinstance(exc, Quarantine):
        return quarantine(inbound, str(exc), trace)
    if isinstance(exc, IntegrityError) and UNIQUE_MESSAGE_ID in str(exc):
        # Another worker stored the same mail (delivered to two of the tenant's mailboxes) a moment ago.
        reason = "already stored (by another worker, just now)"
        trace.step("duplicate", reason)
        try:
            with transaction.atomic():
                ledger.claim(
                    inbound, status=InboundStatus.DUPLICATE, outcome=DUPLICATE, ticket_id=None, trace=trace
                )
        except ledger.AlreadyClaimed:
            inbound.refresh_from_db()
            return Outcome(inbound.outcome or inbound.status, inbound.ticket_id)
        return Outcome(DUPLICATE, reason=reason)
    log.error("inbound %s failed", inbound.pk, exc_info=exc)
    return quarantine(inbound, f"processing failed: {type(exc).__name__}: {exc}", trace)


# --- the pipeline -------------------------------------------------------------------------------------------


def _prepare(inbound: InboundMessage, parsed, trace: Trace, context: Context, streamed: dict) -> Prepared:
    from mailboxes import automatic, sanitize

    trace.step("parse", f"{len(parsed.attachments)} attachments, {len(parsed.defects)} defects")
    if parsed.limit_exceeded:
        raise Quarantine(f"over limits: {parsed.limit_exceeded}")

    auto = automatic.classify(parsed)
    auto_kind = getattr(auto, "kind", None) or ""
    bounce = automatic.parse_bounce(parsed) if auto_kind else None
    spam = automatic.spam_verdict(parsed)
    is_spam, spam_reason = _spam(spam)
    trace.step(
        "classify",
        f"automatic: {auto_kind} ({getattr(auto, 'reason', '')})" if auto_kind else "a person wrote this",
    )
    if is_spam:
        raise Quarantine(f"spam: {spam_reason}")

    # Attachments go to storage before the transaction (never hold a transaction across S3 I/O).
    stored = []
    uploader = context.uploader
    from mailboxes.inbound import streamed_part

    for att in parsed.attachments:
        part = streamed_part(att.payload, streamed)
        if part is not None:
            stored.append((att, part.blob))
            continue
        if uploader is not None:
            blob = uploader.submit(att.payload, sha256=att.sha256)
        else:
            blob = blobs.put(att.payload, sha256=att.sha256)
        stored.append((att, blob))
    if stored:
        trace.step("attachments", f"{len(stored)} to storage")
    html = clean(sanitize.clean_html(parsed.html_body)) if parsed.html_body else ""
    text = clean(parsed.text_body or (sanitize.html_to_text(html) if html else ""))
    trace.step("bodies")
    return Prepared(inbound, trace, parsed, auto_kind, bounce, stored, html, text)


@dataclass(frozen=True)
class _Written:
    """What `_write` did in the transaction: the outcome, the ledger claim to make before COMMIT, and the
    ticket (None for a duplicate)."""

    outcome: Outcome
    claim: dict[str, Any]
    ticket: Ticket | None = None


def _write(prep: Prepared, context: Context, writes: Writes) -> _Written:
    """The ticket rows of one prepared message, inside the caller's transaction (which claims the ledger
    row and commits)."""
    inbound, trace, parsed, auto_kind, bounce = (
        prep.inbound,
        prep.trace,
        prep.parsed,
        prep.auto_kind,
        prep.bounce,
    )
    trace.restart()
    tenant = inbound.tenant
    mailbox = inbound.mailbox
    own = context.addresses_of(tenant.pk)
    sender_addr = contacts.normalize_address(parsed.from_addr.address) if parsed.from_addr else ""
    sender_name = parsed.from_addr.name if parsed.from_addr else ""
    message_id = parsed.message_id[:998]

    dup = context.lookups.duplicate_of(tenant.pk, message_id)
    if dup is not None:
        trace.step("duplicate", dup)
        claim = {"status": InboundStatus.DUPLICATE, "outcome": DUPLICATE, "ticket_id": None}
        return _Written(Outcome(DUPLICATE, reason=dup), {**claim, "trace": trace, "message_id": message_id})

    sender = (
        contacts.contact_for(
            tenant, sender_addr, sender_name, cache=context.domains, known=context.lookups.contacts
        )
        if sender_addr not in own
        else None
    )
    match = threading.find_ticket(
        tenant,
        subject=parsed.subject,
        in_reply_to=" ".join(parsed.in_reply_to),
        references=list(parsed.references),
        sender=sender,
        automatic=bool(auto_kind),
        bounce_of=(getattr(bounce, "original_message_id", "") or "") if bounce else "",
        reopen_window_days=_email_settings(tenant).reopen_window_days,
        known=context.lookups.tickets,
        held=writes,
    )
    trace.step(
        "thread", match.signal + (f" (related to #{match.related_to.number})" if match.related_to else "")
    )

    when = parsed.date if (inbound.is_history and parsed.date) else timezone.now()
    if bounce is not None and match.ticket is None:
        raise Quarantine("a bounce for a message we do not know")
    if match.ticket is None:
        ticket = writes.new_ticket(inbound, mailbox, parsed.subject, sender, match, when)
        outcome = NEW_TICKET
    else:
        ticket = match.ticket
        outcome = AUTOMATIC if auto_kind else REPLY
    message = writes.add_message(
        inbound,
        ticket,
        parsed,
        automatic=bool(auto_kind),
        sender=sender,
        sender_addr=sender_addr,
        bodies=(prep.text, prep.html),
        stored=prep.stored,
        signal=match.signal,
        when=when,
    )
    if not auto_kind:
        writes.add_participants(ticket, sender, parsed, own, context, new=outcome == NEW_TICKET)
        if outcome == REPLY:
            writes.reply_arrived(ticket, match, mailbox, when)
        # Before the reply notification, so it reaches whoever holds the ticket now.
        if not inbound.is_history and routing.may_route(
            ticket, context.queue(ticket.queue_id), reply=outcome == REPLY
        ):
            writes.flush()  # routing reads and locks rows in the database
            if outcome == NEW_TICKET:
                routing.assign_new_ticket(ticket)
            else:
                routing.route_customer_reply(ticket)
    if bounce is not None:
        record_bounce(tenant.pk, bounce, trace)

    autoreply_skip = _autoreply_precheck(inbound, mailbox, outcome, auto_kind, sender_addr, own)
    trace.step("write", f"ticket #{ticket.number}, {outcome}")
    if autoreply_skip:
        trace.step("auto-reply", f"not sent: {autoreply_skip}")
    if outcome == REPLY and not inbound.is_history and ticket.assignee_id is not None:
        writes.flush()  # the notification's outbox row points at the message
        _notify_reply(ticket, message, trace)
    if not autoreply_skip:
        transaction.on_commit(lambda: _send_autoreply(inbound.pk, ticket.pk, sender_addr))
    # Later mail of the batch threads to this ticket and is a duplicate of this one (undone on rollback).
    context.lookups.remember(tenant.pk, message_id, ticket.pk)
    claim = {"status": InboundStatus.PROCESSED, "outcome": outcome, "ticket_id": ticket.pk}
    return _Written(
        Outcome(outcome, ticket.pk, message.pk, autoreply=autoreply_skip or "queued"),
        {**claim, "trace": trace, "message_id": message_id},
        ticket,
    )


def _committed(prepared: Prepared, written: _Written, context: Context) -> None:
    """After COMMIT: the search index and the mailbox's counter follow at the end of the batch."""
    if written.ticket is None:
        return
    context.to_reindex[written.ticket.pk] = written.ticket
    mailbox_id = prepared.inbound.mailbox_id
    if mailbox_id is not None:
        context.imported[mailbox_id] = context.imported.get(mailbox_id, 0) + 1


# --- pieces -------------------------------------------------------------------------------------------------


def _spam(verdict: Any) -> tuple[bool, str]:
    if verdict is None or verdict is False:
        return False, ""
    if verdict is True:
        return True, "marked as spam"
    if isinstance(verdict, tuple):
        return bool(verdict[0]), str(verdict[1]) if len(verdict) > 1 else ""
    flag = getattr(verdict, "is_spam", None)
    if flag is None:
        flag = getattr(verdict, "spam", False)
    return bool(flag), str(getattr(verdict, "reason", "") or "")


def _email_settings(tenant):
    from mailboxes.models import EmailSettings

    row = getattr(tenant, "_email_settings_cache", None)
    if row is None:
        row = EmailSettings.for_tenant(tenant)
        tenant._email_settings_cache = row
    return row


def _autoreply_precheck(inbound, mailbox, outcome: str, auto_kind: str, sender: str, own: set[str]) -> str:
    """Why no auto-reply goes out for this message ('' when it may, subject to the per-day rule and cap)."""
    from mailboxes import autoreply

    return autoreply.precheck(
        mailbox=mailbox,
        outcome=outcome,
        automatic_kind=auto_kind,
        sender=sender,
        own_addresses=own,
        is_history=inbound.is_history,
    )


def _notify_reply(ticket: Ticket, message: Message, trace: Trace) -> None:
    """Tell the assignee the customer answered (an outbox row in this transaction, sent after commit)."""
    from tickets import notifications

    if ticket.assignee_id is None:
        return  # nobody to tell (saves the savepoint below)
    try:
        with transaction.atomic():
            if notifications.customer_replied(ticket, message) is not None:
                trace.step("notify", "the assignee was told")
    except Exception:  # a broken template or preference must not cost the customer's mail
        log.exception("reply notification for ticket %s failed", ticket.pk)


def _send_autoreply(inbound_id: int, ticket_id: int, sender: str) -> None:
    from mailboxes import autoreply

    try:
        autoreply.send(inbound_id, ticket_id, sender)
    except Exception:  # an auto-reply problem must not undo or block intake
        log.exception("auto-reply for inbound %s failed", inbound_id)
