"""The outbox: every mail we send is a row written with what caused it, then sent, retried and logged here.

    queue(...)      in the caller's transaction: validate, fix the Message-ID, write the row, send on commit
    send(row)       one row; send_batch(mailbox_id) every due row of a mailbox over one SMTP connection
    dispatch_due()  beat: hand deferred rows whose time has come (and queued rows nobody picked up) to senders
    recover_stuck() beat: rows left in `sending` by a worker that died

Rules (DESIGN.md section 3): a sender claims rows with a conditional UPDATE (queued/deferred -> sending,
with a random claim token) before any I/O, and no database transaction is ever open while we talk to
SMTP, IMAP or storage. Just before the final "." of DATA the row is marked (`data_sent_at`, conditional on
our claim): if the worker dies after that, nobody knows whether the server took the mail, so recovery marks
it `uncertain` for a human instead of sending it twice; if it died before, recovery queues it again. If
recovery took the row back first, the marker update finds nothing and the sender abandons the message
before the final dot, so a mail is never completed twice.

Outcomes: 250 -> sent; 4xx, timeouts, refused connections -> deferred with exponential backoff and jitter
for up to 24 hours, then failed; 5xx -> failed with the plain-words reason; connection lost while waiting
for the reply to the final dot -> uncertain. A failed agent reply adds an internal note to its ticket,
reopens it and notifies the agent.

The parts: `mime` builds the .eml, `sender` works through the rows of a mailbox, `submission` speaks SMTP
for one message, `outcomes` records what happened, `sent_folder` keeps the IMAP copy, `sendlimits` the caps.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from mailboxes import mime, outcomes, sender, signatures
from mailboxes.errors import MailError, NotConfigured
from mailboxes.models import Mailbox, OutboundEmail, OutboundKind, OutboundStatus
from mailboxes.outcomes import AGENT_KINDS, BatchResult, backoff  # noqa: F401 - part of the API
from mailboxes.sender import CHUNK, LEASE, due_q  # noqa: F401 - part of the API
from mailboxes.sent_folder import append as append_to_sent  # noqa: F401 - part of the API
from mailboxes.sent_folder import wants_sent_copy  # noqa: F401 - part of the API
from mailboxes.smtp_errors import DeliveryUncertain, NoRecipient

log = logging.getLogger(__name__)

# Queued rows are sent on commit; the dispatcher only picks up those nobody took within this time.
QUEUED_GRACE = timedelta(seconds=30)
TAGGED_KINDS = (OutboundKind.REPLY, OutboundKind.FORWARD, OutboundKind.AUTO_REPLY)


# --- queueing ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttachmentRef:
    """A file to attach, already in object storage."""

    key: str
    filename: str
    content_type: str = "application/octet-stream"
    size: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
        }


def attachment_ref(item: Any) -> dict[str, Any]:
    """An AttachmentRef, a tickets.Attachment or a dict with key/filename/content_type/size, as stored."""
    if isinstance(item, AttachmentRef):
        return item.as_dict()
    if isinstance(item, dict):
        return AttachmentRef(
            key=str(item["key"]),
            filename=str(item.get("filename") or "attachment"),
            content_type=str(item.get("content_type") or "application/octet-stream"),
            size=int(item.get("size") or 0),
        ).as_dict()
    if hasattr(item, "storage_key"):
        return AttachmentRef(item.storage_key, item.filename, item.content_type, item.size).as_dict()
    raise TypeError(f"cannot attach {item!r}: give an AttachmentRef, a dict or a tickets.Attachment")


def clean_body(text: str) -> str:
    """Body text with one kind of line end and no NUL characters."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def queue(
    *,
    tenant,
    mailbox: Mailbox | None,
    kind: str,
    to: Iterable[str],
    subject: str,
    text: str,
    html: str | None = None,
    cc: Iterable[str] = (),
    bcc: Iterable[str] = (),
    ticket=None,
    ticket_message=None,
    in_reply_to: str = "",
    references: Iterable[str] = (),
    attachments: Iterable[Any] = (),
    extra_headers: dict | None = None,
    created_by=None,
) -> OutboundEmail:
    """Write an outbound mail in the current transaction (Message-ID fixed now); it is sent after commit.

    ``html`` is the content (the tenant's layout is put around it here); without it, it is made from
    ``text``. Raises NoRecipient, InvalidAddress or NotConfigured (MailError: .message, .advice).
    """
    if mailbox is None:
        raise NotConfigured(
            "There is no mailbox to send this mail from.", "Connect a mailbox under Settings → Mailboxes."
        )
    if mailbox.tenant_id != tenant.pk:
        raise ValueError("the mailbox belongs to another tenant")
    to_list, cc_list, bcc_list = mime.unique_addresses(
        mime.parse_addresses(list(to)), mime.parse_addresses(list(cc)), mime.parse_addresses(list(bcc))
    )
    if not (to_list or cc_list or bcc_list):
        raise NoRecipient()
    subject = mime.clean_subject(subject)
    if ticket is not None and kind in TAGGED_KINDS:
        from tickets import threading

        subject = mime.clean_subject(threading.with_subject_tag(subject, ticket))
    agent = created_by if kind in AGENT_KINDS else None
    text = clean_body(text)
    content = html if html is not None else mime.html_from_text(text)
    layout_vars = signatures.variables(tenant=tenant, ticket=ticket, mailbox=mailbox, agent=agent)
    parent = mime.clean_msg_id(in_reply_to)
    row = OutboundEmail.objects.create(
        tenant=tenant,
        mailbox=mailbox,
        kind=kind,
        ticket=ticket,
        ticket_message=ticket_message,
        from_addr=mime.from_header(tenant, mailbox, agent),
        to=mime.format_addresses(to_list),
        cc=mime.format_addresses(cc_list),
        bcc=mime.format_addresses(bcc_list),
        subject=subject,
        message_id=mime.new_message_id(ticket=ticket, mailbox=mailbox),
        in_reply_to=parent,
        references=mime.thread_references(references, parent),
        reply_to=str(mime.make_address(mailbox.from_header_name, mailbox.reply_to))
        if mailbox.reply_to
        else "",
        text=text,
        html=mime.wrap_in_layout(tenant, content, layout_vars),
        attachment_refs=[attachment_ref(a) for a in attachments],
        extra_headers={str(k): mime.clean_text(v, 900) for k, v in (extra_headers or {}).items()},
        created_by=created_by,
    )
    transaction.on_commit(partial(enqueue, row.pk))
    return row


def enqueue(outbound_id: int) -> None:
    """Hand a row to a worker; if the broker is down the dispatcher picks the row up later."""
    from mailboxes.tasks_outbound import send_outbound

    try:
        send_outbound.delay(outbound_id)
    except Exception:
        log.exception("could not enqueue outbound %s; the dispatcher will send it", outbound_id)


def send(outbound: OutboundEmail) -> str:
    """Send one row if it is due (idempotent: any other status is left alone); returns its status after."""
    row = OutboundEmail.objects.select_related("mailbox", "tenant").get(pk=outbound.pk)
    mailbox = row.mailbox
    if mailbox is None:
        _fail_unsendable(
            row, NotConfigured("The mailbox of this mail was deleted.", "Send it again from another mailbox.")
        )
        return OutboundStatus.FAILED
    result = BatchResult()
    picked = False

    def pick(limit: int) -> list[int]:
        nonlocal picked
        if picked:
            return []
        picked = True
        return list(
            OutboundEmail.objects.filter(pk=row.pk).filter(due_q(timezone.now())).values_list("pk", flat=True)
        )

    sender.send_rows(mailbox, pick, result)
    status = OutboundEmail.objects.values_list("status", flat=True).get(pk=row.pk)
    outbound.status = status
    return status


def send_batch(mailbox_id: int, *, limit: int | None = None) -> BatchResult:
    """Send every due row of the mailbox (oldest first) over one reused SMTP connection."""
    result = BatchResult()
    mailbox = Mailbox.objects.select_related("tenant").filter(pk=mailbox_id).first()
    if mailbox is None:
        return result
    budget = [limit if limit is not None else 10**9]
    after = [0]  # rows are taken in id (= queueing) order, each at most once per batch

    def pick(n: int) -> list[int]:
        n = min(n, budget[0])
        if n <= 0:
            return []
        ids = list(
            sender.due_for(mailbox, timezone.now())
            .filter(pk__gt=after[0])
            .order_by("pk")
            .values_list("pk", flat=True)[:n]
        )
        if ids:
            after[0] = ids[-1]
        budget[0] -= len(ids)
        return ids

    sender.send_rows(mailbox, pick, result)
    return result


def _fail_unsendable(row: OutboundEmail, error: MailError) -> None:
    token = secrets.token_hex(16)
    claimed = (
        OutboundEmail.objects.filter(pk=row.pk)
        .filter(due_q(timezone.now()))
        .update(status=OutboundStatus.SENDING, claim_token=token, claimed_at=timezone.now())
    )
    if claimed:
        outcomes.record_failed(row, token, error)


# --- beat: retries and recovery ----------------------------------------------------------------------------


def dispatch_due(now: datetime | None = None) -> list[int]:
    """Mailbox ids with due rows, each handed to a batch sender; rows without a mailbox fail."""
    from mailboxes.tasks_outbound import send_mailbox_batch

    now = now or timezone.now()
    due = OutboundEmail.objects.filter(
        Q(status=OutboundStatus.QUEUED, created_at__lte=now - QUEUED_GRACE)
        | Q(status=OutboundStatus.DEFERRED, next_attempt_at__lte=now)
        | Q(status=OutboundStatus.DEFERRED, next_attempt_at__isnull=True)
    )
    for row in due.filter(mailbox__isnull=True)[:100]:
        _fail_unsendable(
            row, NotConfigured("The mailbox of this mail was deleted.", "Send it again from another mailbox.")
        )
    mailbox_ids = sorted(set(due.filter(mailbox__isnull=False).values_list("mailbox_id", flat=True)))
    for mailbox_id in mailbox_ids:
        try:
            send_mailbox_batch.delay(mailbox_id)
        except Exception:
            log.exception("could not enqueue the batch of mailbox %s", mailbox_id)
    return mailbox_ids


@dataclass(frozen=True)
class Recovery:
    requeued: list[int]
    uncertain: list[int]


def recover_stuck(now: datetime | None = None, *, lease: timedelta = LEASE) -> Recovery:
    """Rows in `sending` longer than the lease belong to a dead worker: back to the queue, or uncertain
    when the final dot may have reached the server."""
    now = now or timezone.now()
    stale = OutboundEmail.objects.filter(status=OutboundStatus.SENDING, claimed_at__lt=now - lease)
    # A connection test that never finished is just a failed test: it is not mail anybody waits for.
    stale.filter(kind=OutboundKind.TEST).update(
        status=OutboundStatus.FAILED,
        error_message="The connection test did not finish.",
        error_advice="Run it again.",
    )
    stale = stale.exclude(kind=OutboundKind.TEST)
    uncertain_ids = list(stale.filter(data_sent_at__isnull=False).values_list("pk", flat=True))
    error = DeliveryUncertain(
        "The sending process stopped after handing the message to the server: it may or may not have arrived."
    )
    if uncertain_ids:
        stale.filter(pk__in=uncertain_ids, data_sent_at__isnull=False).update(
            status=OutboundStatus.UNCERTAIN,
            error_message=error.message,
            error_advice=error.advice,
            claim_token="",
        )
    candidates = list(stale.filter(data_sent_at__isnull=True).values_list("pk", flat=True))
    requeued = []
    for pk in candidates:
        # Conditional per row: a sender that marks the final dot at the same moment wins or loses cleanly.
        if stale.filter(pk=pk, data_sent_at__isnull=True).update(
            status=OutboundStatus.QUEUED, claim_token="", next_attempt_at=None
        ):
            requeued.append(pk)
    for pk in requeued:
        enqueue(pk)
    if requeued or uncertain_ids:
        log.warning("recovered stuck outbound mail: requeued %s, uncertain %s", requeued, uncertain_ids)
    return Recovery(requeued, uncertain_ids)


# --- human decisions (the email log) ----------------------------------------------------------------------


def retry_now(outbound: OutboundEmail) -> bool:
    """A deferred or failed mail goes out again now (a fresh 24-hour retry window); False if not possible."""
    done = OutboundEmail.objects.filter(
        pk=outbound.pk, status__in=[OutboundStatus.DEFERRED, OutboundStatus.FAILED]
    ).update(status=OutboundStatus.QUEUED, next_attempt_at=None, first_attempt_at=None, claim_token="")
    if done:
        transaction.on_commit(partial(enqueue, outbound.pk))
    return bool(done)


def send_again(outbound: OutboundEmail) -> bool:
    """An uncertain mail, after a human checked it did not arrive, is sent again (the same bytes)."""
    done = OutboundEmail.objects.filter(pk=outbound.pk, status=OutboundStatus.UNCERTAIN).update(
        status=OutboundStatus.QUEUED,
        next_attempt_at=None,
        first_attempt_at=None,
        data_sent_at=None,
        claim_token="",
    )
    if done:
        transaction.on_commit(partial(enqueue, outbound.pk))
    return bool(done)


# --- what agents see -----------------------------------------------------------------------------------------


def describe(row: OutboundEmail) -> str:
    """One line on the delivery state for people: "Sent", "Will retry at 14:05: ...", "Failed: ..."."""
    if row.status == OutboundStatus.DEFERRED and row.next_attempt_at:
        when = timezone.localtime(row.next_attempt_at).strftime("%H:%M")
        return f"Will retry at {when}: {row.error_message}".strip(": ")
    if row.status in (OutboundStatus.FAILED, OutboundStatus.UNCERTAIN):
        return f"{row.get_status_display()}: {row.error_message}".strip(": ")
    return str(row.get_status_display())
