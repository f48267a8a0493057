"""An agent's reply or forward: composed once, shown in the preview exactly as it will be sent, then written
to the thread and the outbox in one transaction.

    draft = replies.preview(ticket, author=user, to=[...], body="...")      # what the customer will get
    message = replies.send_reply(ticket, author=user, to=[...], cc=[], bcc=[], body="...", attachments=[])

`compose()` builds everything both of them show or send: the From line, recipients with the tenant's default
copies (CC 1, CC 2, BCC), the subject with the ticket's signed tag, the greeting, the body, the signature
(the agent's own, else the mailbox's, else the workspace standard; variables filled in the sandbox), the
quoted history (none / last message / full conversation, a tenant setting), the HTML alternative inside the
tenant's layout, and the threading headers. Uploaded files go to object storage before the transaction (no
S3 I/O while it is open); a crash in between leaves at most an unused blob.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from accounts.access import require_customer_writer
from accounts.models import Membership
from mailboxes import blobs, mime, outbound, signatures
from mailboxes.errors import MailError
from mailboxes.models import EmailSettings, Mailbox, OutboundEmail, OutboundKind, QuoteHistory
from mailboxes.sanitize import html_to_text
from mailboxes.smtp_errors import MessageTooLarge
from tickets.models import Attachment, Message, MessageKind, Participant, Status, Ticket

KINDS = ("reply", "forward")
QUOTED_KINDS = (MessageKind.INBOUND, MessageKind.OUTBOUND)
MAX_QUOTED_MESSAGES = 50


@dataclass(frozen=True)
class FileInfo:
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class Draft:
    """Everything about a reply before it is sent; `text` and `html` are exactly the two MIME parts."""

    kind: str
    mailbox: Mailbox
    from_addr: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    subject: str
    text: str
    html: str
    content_html: str = field(repr=False)
    thread_text: str = field(repr=False)
    thread_html: str = field(repr=False)
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    attachments: list[FileInfo] = field(default_factory=list)


# --- who may, from where ---------------------------------------------------------------------------------


def _membership(ticket: Ticket, author) -> Membership:
    membership = (
        Membership.objects.filter(tenant_id=ticket.tenant_id, user=author).select_related("tenant").first()
    )
    if membership is None or not Ticket.objects.visible_to(membership).filter(pk=ticket.pk).exists():
        raise PermissionDenied("You cannot write on this ticket.")
    require_customer_writer(membership)
    return membership


def _mailbox(ticket: Ticket, membership: Membership, mailbox: Mailbox | None) -> Mailbox:
    from tickets import notifications

    if mailbox is not None:
        if not Mailbox.objects.visible_to(membership).active().filter(pk=mailbox.pk).exists():
            raise PermissionDenied("You cannot send from this mailbox.")
        return mailbox
    chosen = notifications.mailbox_for(ticket.tenant, ticket)
    if chosen is None:
        from mailboxes.errors import NotConfigured

        raise NotConfigured(
            "There is no mailbox to send from.", "Connect a mailbox under Settings → Mailboxes."
        )
    return chosen


# --- composing ----------------------------------------------------------------------------------------------


def _tz(tenant) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(tenant.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _thread(ticket: Ticket) -> list[Message]:
    """Messages a reply may quote, newest first (internal notes and automatic mail never)."""
    return list(
        Message.objects.filter(tenant_id=ticket.tenant_id, ticket=ticket, kind__in=QUOTED_KINDS)
        .select_related("author", "contact")
        .order_by("-created_at", "-id")[:MAX_QUOTED_MESSAGES]
    )


def _who(message: Message) -> str:
    name = message.from_name or (message.author.display_name if message.author_id else "")
    address = message.from_addr
    if name and address:
        return f"{name} <{address}>"
    return name or address or "Someone"


def _when(message: Message, tz) -> str:
    moment = message.sent_date or message.created_at
    return timezone.localtime(moment, tz).strftime("%a, %d %b %Y at %H:%M")


def _plain(message: Message) -> str:
    return (message.text or html_to_text(message.html)).strip()


def _quote_text(messages: Sequence[Message], tz, forward: bool) -> str:
    blocks = []
    for message in messages:
        if forward:
            header = [
                "---------- Forwarded message ----------",
                f"From: {_who(message)}",
                f"Date: {_when(message, tz)}",
                f"Subject: {mime.clean_text(message.subject)}",
            ]
            if message.to:
                header.append(f"To: {', '.join(message.to)}")
            blocks.append("\n".join(header) + "\n\n" + _plain(message))
        else:
            quoted = "\n".join(f"> {line}" if line else ">" for line in _plain(message).splitlines())
            blocks.append(f"On {_when(message, tz)}, {_who(message)} wrote:\n{quoted}")
    return "\n\n".join(blocks)


_QUOTE_STYLE = "margin:8px 0 0 0;padding-left:12px;border-left:3px solid #d0d5dd;color:#475467;"


def _quote_html(messages: Sequence[Message], tz, forward: bool) -> str:
    blocks = []
    for message in messages:
        body = signatures.text_to_html(_plain(message))
        if forward:
            rows = [
                ("From", _who(message)),
                ("Date", _when(message, tz)),
                ("Subject", mime.clean_text(message.subject)),
            ]
            if message.to:
                rows.append(("To", ", ".join(message.to)))
            head = "<br>".join(f"{escape(k)}: {escape(v)}" for k, v in rows)
            blocks.append(
                '<div class="hd-forward" style="margin-top:16px;color:#475467;">'
                f"---------- Forwarded message ----------<br>{head}</div>"
                f'<div style="margin-top:8px;">{body}</div>'
            )
        else:
            blocks.append(
                '<div class="hd-quote" style="margin-top:16px;">'
                f'<div style="color:#667085;">On {escape(_when(message, tz))}, {escape(_who(message))} wrote:</div>'
                f'<blockquote style="{_QUOTE_STYLE}">{body}</blockquote></div>'
            )
    return "".join(blocks)


def _quoted(ticket: Ticket, kind: str, setting: str) -> list[Message]:
    thread = _thread(ticket)
    if kind == "forward":
        inbound = [m for m in thread if m.kind == MessageKind.INBOUND]
        return (inbound or thread)[:1]
    if setting == QuoteHistory.NONE:
        return []
    if setting == QuoteHistory.LAST:
        return thread[:1]
    return thread


def _subject(ticket: Ticket, kind: str) -> str:
    title = mime.clean_text(ticket.title) or "(no subject)"
    prefix = "Fwd: " if kind == "forward" else "Re: "
    if title.lower().startswith(prefix.lower()):
        return title
    return prefix + title


def _threading(ticket: Ticket) -> tuple[str, list[str]]:
    """In-Reply-To and References: the newest message with an id, and its chain."""
    last = (
        Message.objects.filter(tenant_id=ticket.tenant_id, ticket=ticket, kind__in=QUOTED_KINDS)
        .exclude(message_id="")
        .order_by("-created_at", "-id")
        .only("message_id", "references")
        .first()
    )
    if last is None:
        return "", []
    parent = mime.clean_msg_id(last.message_id)
    return parent, mime.thread_references(list(last.references or []), parent)


def _file_info(item: Any) -> FileInfo:
    if isinstance(item, Attachment):
        return FileInfo(item.filename, item.content_type, item.size)
    if isinstance(item, dict):
        return FileInfo(
            str(item.get("filename", "")), str(item.get("content_type", "")), int(item.get("size", 0))
        )
    name = getattr(item, "name", "") or "attachment"
    return FileInfo(
        name.rsplit("/", 1)[-1],
        getattr(item, "content_type", "") or "application/octet-stream",
        int(getattr(item, "size", 0) or 0),
    )


def _contact_address(contact) -> str:
    try:
        return str(mime.make_address(contact.name, contact.email))
    except MailError:
        return contact.email


def compose(
    ticket: Ticket,
    *,
    author,
    to: Iterable[str] | None,
    cc: Iterable[str] = (),
    bcc: Iterable[str] = (),
    body: str,
    attachments: Iterable[Any] = (),
    mailbox: Mailbox | None = None,
    kind: str = "reply",
) -> Draft:
    """The reply exactly as it will be sent (raises MailError for bad addresses, PermissionDenied)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    tenant = ticket.tenant
    membership = _membership(ticket, author)
    box = _mailbox(ticket, membership, mailbox)
    email_settings = EmailSettings.for_tenant(tenant)
    if to is None:
        to = [_contact_address(ticket.requester)] if kind == "reply" and ticket.requester_id else []
    defaults = [a for a in (email_settings.cc1, email_settings.cc2) if a]
    to_a, cc_a, bcc_a = mime.unique_addresses(
        mime.parse_addresses(list(to)),
        mime.parse_addresses([*list(cc), *defaults]),
        mime.parse_addresses([*list(bcc), *([email_settings.bcc] if email_settings.bcc else [])]),
    )
    contact = ticket.requester if kind == "reply" else None
    variables = signatures.variables(tenant=tenant, agent=author, ticket=ticket, contact=contact, mailbox=box)
    body = (body or "").replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    greeting = signatures.render_text(email_settings.greeting, variables) if kind == "reply" else ""
    if greeting and body.lstrip().startswith(greeting.strip()):
        greeting = ""  # the agent already wrote it (the composer may prefill it)
    signature = signatures.render_text(
        signatures.signature_source(tenant=tenant, agent=author, mailbox=box), variables
    )

    text_parts = [p for p in (greeting, body) if p]
    html_parts = [
        f"<p>{signatures.text_to_html(greeting)}</p>" if greeting else "",
        f"<div>{signatures.text_to_html(body)}</div>",
    ]
    if signature:
        text_parts.append(f"-- \n{signature}")
        html_parts.append(
            f'<div class="hd-signature" style="margin-top:16px;color:#475467;">-- <br>{signatures.text_to_html(signature)}</div>'
        )
    thread_text = "\n\n".join(text_parts)
    thread_html = "".join(html_parts)
    quoted = _quoted(ticket, kind, email_settings.quote_history)
    tz = _tz(tenant)
    text, content_html = thread_text, thread_html
    if quoted:
        text = f"{thread_text}\n\n{_quote_text(quoted, tz, kind == 'forward')}"
        content_html = thread_html + _quote_html(quoted, tz, kind == "forward")
    text = outbound.clean_body(text)
    in_reply_to, references = _threading(ticket)
    if kind == "forward":  # a new conversation for the third party, still threaded for us
        in_reply_to = ""
    from tickets import threading

    agent = author if kind in ("reply", "forward") else None
    layout_vars = signatures.variables(tenant=tenant, ticket=ticket, mailbox=box, agent=agent)
    return Draft(
        kind=kind,
        mailbox=box,
        from_addr=mime.from_header(tenant, box, author),
        to=mime.format_addresses(to_a),
        cc=mime.format_addresses(cc_a),
        bcc=mime.format_addresses(bcc_a),
        subject=mime.clean_subject(
            threading.with_subject_tag(mime.clean_subject(_subject(ticket, kind)), ticket)
        ),
        text=text,
        html=mime.wrap_in_layout(tenant, mark_safe(content_html), layout_vars),  # noqa: S308 - escaped parts
        content_html=content_html,
        thread_text=thread_text,
        thread_html=thread_html,
        in_reply_to=in_reply_to,
        references=references if kind == "reply" else mime.thread_references(references, ""),
        attachments=[_file_info(a) for a in attachments],
    )


def preview(
    ticket: Ticket,
    *,
    author,
    to: Iterable[str] | None = None,
    cc: Iterable[str] = (),
    bcc: Iterable[str] = (),
    body: str = "",
    attachments: Iterable[Any] = (),
    mailbox: Mailbox | None = None,
    kind: str = "reply",
) -> Draft:
    """What the recipients will get, for the composer's preview: the same `compose()` that `send_reply` uses."""
    return compose(
        ticket,
        author=author,
        to=to,
        cc=cc,
        bcc=bcc,
        body=body,
        attachments=attachments,
        mailbox=mailbox,
        kind=kind,
    )


# --- sending --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stored:
    key: str
    sha256: str
    size: int
    filename: str
    content_type: str


def _store_uploads(items: Sequence[Any]) -> list[Attachment | _Stored]:
    """Uploaded files into object storage (outside any transaction); thread attachments pass as they are."""
    stored: list[Attachment | _Stored] = []
    total = 0
    for item in items:
        if isinstance(item, Attachment):
            stored.append(item)
            total += item.size
            continue
        info = _file_info(item)
        blob = blobs.put_file(item)
        total += blob.size
        stored.append(_Stored(blob.key, blob.sha256, blob.size, info.filename, info.content_type))
    limit = settings.ATTACHMENT_MAX_BYTES
    if total > limit:
        raise MessageTooLarge(
            f"The attachments are {total / 1048576:.1f} MB together; at most {limit / 1048576:.0f} MB can be sent.",
            "Send fewer or smaller files, or share large files as a link.",
        )
    return stored


def send_reply(
    ticket: Ticket,
    *,
    author,
    to: Iterable[str] | None,
    cc: Iterable[str] = (),
    bcc: Iterable[str] = (),
    body: str,
    attachments: Iterable[Any] = (),
    mailbox: Mailbox | None = None,
    kind: str = "reply",
    status_after: str | None = None,
) -> Message:
    """Write the reply to the thread and the outbox in ONE transaction; it is sent after the commit.

    Light agents get PermissionDenied; bad addresses and a missing mailbox raise MailError (.message,
    .advice) before anything is written.
    """
    items = list(attachments)
    draft = compose(
        ticket, author=author, to=to, cc=cc, bcc=bcc, body=body, attachments=items, mailbox=mailbox, kind=kind
    )
    if status_after is not None and status_after not in Status.values:
        raise ValueError(f"unknown status {status_after!r}")
    stored = _store_uploads(items)
    now = timezone.now()
    with transaction.atomic():
        message = Message.objects.create(
            tenant_id=ticket.tenant_id,
            ticket=ticket,
            kind=MessageKind.OUTBOUND,
            author=author,
            from_addr=draft.mailbox.email,
            from_name=mime.sender_name(ticket.tenant, draft.mailbox, author),
            to=draft.to,
            cc=draft.cc,
            bcc=draft.bcc,
            subject=draft.subject,
            text=draft.thread_text,
            html=draft.thread_html,
            in_reply_to=draft.in_reply_to,
            references=draft.references,
            created_at=now,
        )
        rows = []
        for item in stored:
            if isinstance(item, Attachment):
                rows.append(
                    Attachment.objects.create(
                        tenant_id=ticket.tenant_id,
                        message=message,
                        filename=item.filename,
                        content_type=item.content_type,
                        size=item.size,
                        sha256=item.sha256,
                        storage_key=item.storage_key,
                    )
                )
            else:
                rows.append(
                    Attachment.objects.create(
                        tenant_id=ticket.tenant_id,
                        message=message,
                        filename=item.filename,
                        content_type=item.content_type,
                        size=item.size,
                        sha256=item.sha256,
                        storage_key=item.key,
                    )
                )
        row = outbound.queue(
            tenant=ticket.tenant,
            mailbox=draft.mailbox,
            kind=OutboundKind.REPLY if kind == "reply" else OutboundKind.FORWARD,
            to=draft.to,
            cc=draft.cc,
            bcc=draft.bcc,
            subject=draft.subject,
            text=draft.text,
            html=mark_safe(draft.content_html),  # noqa: S308 - built from escaped parts in compose()
            ticket=ticket,
            ticket_message=message,
            in_reply_to=draft.in_reply_to,
            references=draft.references,
            attachments=rows,
            created_by=author,
        )
        Message.objects.filter(pk=message.pk).update(message_id=row.message_id)
        message.message_id = row.message_id
        _add_participants(ticket, [*draft.to, *draft.cc])
        _update_ticket(ticket, author=author, kind=kind, status_after=status_after, now=now)
    return message


def _add_participants(ticket: Ticket, addresses: list[str]) -> None:
    """Whoever we write to may answer into the ticket (threading only trusts participants)."""
    from tickets import contacts

    own = {m.lower() for m in Mailbox.objects.for_tenant(ticket.tenant).values_list("email", flat=True)}
    people = []
    for address in mime.parse_addresses(addresses):
        if address.addr_spec.lower() in own:
            continue
        contact = contacts.contact_for(ticket.tenant, address.addr_spec, address.display_name)
        if contact is not None:
            people.append(contact)
    Participant.objects.bulk_create(
        [Participant(tenant_id=ticket.tenant_id, ticket=ticket, contact=c) for c in people],
        ignore_conflicts=True,
    )


def _update_ticket(ticket: Ticket, *, author, kind: str, status_after: str | None, now) -> None:
    from tickets import history

    fields: dict[str, Any] = {"last_message_at": now, "last_message_inbound": False, "updated_at": now}
    if ticket.first_response_at is None and kind == "reply":
        fields["first_response_at"] = now
    Ticket.objects.filter(pk=ticket.pk).update(**fields)
    for name, value in fields.items():
        setattr(ticket, name, value)
    status = status_after or (Status.OPEN if ticket.status == Status.NEW else None)
    if status and status != ticket.status:
        history.change_ticket(ticket, actor=author, status=status)
    _touch_lists(ticket, author)


def _touch_lists(ticket: Ticket, author) -> None:
    try:
        from tickets import lists, search
    except ImportError:  # pragma: no cover - the workspace modules are optional for the outbox
        return
    lists.mark_read(ticket, author)
    search.reindex(ticket)


# --- when a reply cannot be delivered -------------------------------------------------------------------------


def delivery_failed(row: OutboundEmail, error) -> Message | None:
    """A note on the ticket saying why and what to do, the ticket reopened, the agent notified.

    Runs in the transaction that marks the outbound row failed (see mailboxes.outbound).
    """
    from tickets import history, notifications

    ticket = Ticket.objects.select_related("tenant").filter(pk=row.ticket_id).first()
    if ticket is None:
        return None
    recipients = ", ".join([*row.to, *row.cc, *row.bcc])
    lines = [
        f"Delivery failed: the mail “{row.subject}” to {recipients} could not be delivered.",
        "",
        error.message,
    ]
    if error.advice:
        lines += ["", f"What to do: {error.advice}"]
    if error.detail:
        lines += ["", f"Server reply: {error.detail}"]
    note = Message.objects.create(
        tenant_id=ticket.tenant_id,
        ticket=ticket,
        kind=MessageKind.NOTE,
        author=None,
        text="\n".join(lines),
        created_at=timezone.now(),
    )
    if ticket.status != Status.OPEN:
        history.change_ticket(ticket, actor=None, status=Status.OPEN)
    notifications.delivery_failed(row, error)
    return note
