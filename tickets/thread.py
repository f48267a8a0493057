"""A ticket's thread as agents read it: its messages in order, their bodies made safe, and internal notes.

Customer HTML is shown only inside a sandboxed iframe served by its own endpoint (see views.message_body);
`render_body` prepares that document: sanitised again with today's rules, `cid:` images pointing at the
authorised inline-image endpoint, remote images left out until the agent asks for them.
"""

import re
from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.access import tenant_reverse
from mailboxes.sanitize import RenderedHtml, render_html
from tickets import lists, search
from tickets.models import Attachment, Message, MessageKind, Ticket

# What threading.py stores in Message.threading_signal, as agents read it.
THREADING_SIGNALS = {
    "new": "New ticket: no earlier message matched",
    "in-reply-to": "Threaded by In-Reply-To",
    "references": "Threaded by References",
    "subject-token": "Threaded by the signed ticket token in the subject",
    "bounce": "Delivery report for a message of this ticket",
    "new-not-participant": "New ticket: the sender does not take part in the matched ticket",
    "new-after-reopen-window": "New ticket: the matched ticket was closed too long ago",
}

# Inline images are shown only in these types; anything else (SVG above all) is download-only.
INLINE_IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"}


def messages(ticket: Ticket, *, users: dict | None = None) -> list[Message]:
    """The thread in order, each message with its author, `files` (its attachments) and `last_outbound` (its
    latest OutboundEmail, or None), in four queries at most.

    `users` ({id: user}: the request's member list) saves loading authors again; those not in it are looked
    up. Only what the thread shows is loaded: no References header lists, no copies of sent bodies, no
    processing traces (the page loads a message's trace when it is opened: views_files.message_trace).
    """
    from accounts.models import User
    from mailboxes.models import OutboundEmail

    rows = list(
        Message.objects.filter(tenant_id=ticket.tenant_id, ticket=ticket)
        .defer("references")
        .order_by("created_at", "id")
    )
    ids = [m.pk for m in rows]
    # Grouped by hand rather than prefetched: a prefetch builds a queryset per message, which costs more than
    # the queries themselves on a long thread.
    files: dict[int, list[Attachment]] = defaultdict(list)
    last_outbound = {}
    if ids:
        for attachment in (
            Attachment.objects.filter(message_id__in=ids)
            .only("message_id", "filename", "content_type", "size", "is_inline")
            .order_by("id")
        ):
            files[attachment.message_id].append(attachment)
        # Delivery state needs the status and the server's words only.
        for out in (
            OutboundEmail.objects.filter(ticket_message_id__in=ids)
            .only("ticket_message_id", "status", "smtp_text", "error_message", "error_advice")
            .order_by("-created_at")
        ):
            last_outbound.setdefault(out.ticket_message_id, out)
    authors = _known_or_loaded(User.objects, {m.author_id for m in rows if m.author_id}, users or {})
    author_field = Message._meta.get_field("author")
    for message in rows:
        message.ticket = ticket
        author_field.set_cached_value(message, authors.get(message.author_id))
        message.files = files.get(message.pk, [])
        message.last_outbound = last_outbound.get(message.pk)
    return rows


def _known_or_loaded(rows, ids: set[int], known: dict) -> dict:
    """{id: object} for `ids`, from `known` where it has them, the rest in one query."""
    missing = ids - known.keys()
    return {**known, **rows.in_bulk(missing)} if missing else known


# Cheaper than rendering every body: an <img> whose source is remote (parked or not) is what "Show images" loads.
REMOTE_IMAGE = re.compile(r"""<img\b[^>]*?\s(?:data-remote-src|src)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def for_display(ticket: Ticket, *, users: dict | None = None) -> list[Message]:
    """messages() with what the ticket page shows on each: its URLs, remote images, delivery, threading."""
    entries = messages(ticket, users=users)
    # One reverse() for the thread, not several per message: long threads render fast.
    prefix = tenant_reverse(ticket.tenant, "tickets:split", ticket.number, 1).removesuffix("1/split/")
    for message in entries:
        message.url = f"{prefix}{message.pk}/"
        message.body_url = f"{message.url}body/"
        message.has_remote_images = bool(message.html and REMOTE_IMAGE.search(message.html))
        message.delivery = delivery(message.last_outbound)
        message.signal_label = THREADING_SIGNALS.get(message.threading_signal, message.threading_signal)
    return entries


def _cid_key(content_id: str) -> str:
    return content_id.strip().strip("<>").strip().lower()


def render_body(message: Message, *, show_remote: bool) -> RenderedHtml:
    """The message's HTML for its iframe: cid images mapped to authorised URLs, remote ones blocked unless asked."""
    inline = {
        _cid_key(a.content_id): a
        for a in message.attachments.all()
        if a.content_id and a.content_type in INLINE_IMAGE_TYPES
    }
    tenant = message.ticket.tenant

    def cid_url(cid: str) -> str | None:
        attachment = inline.get(_cid_key(cid))
        return tenant_reverse(tenant, "tickets:inline_image", attachment.pk) if attachment else None

    return render_html(message.html, cid_url=cid_url, show_remote=show_remote)


@dataclass(frozen=True)
class Delivery:
    status: str
    label: str
    tone: str
    detail: str


_TONES = {
    "queued": "info",
    "sending": "info",
    "sent": "ok",
    "deferred": "warn",
    "failed": "err",
    "uncertain": "warn",
}


def delivery(out) -> Delivery | None:
    """How sending a message went, from its latest OutboundEmail (None when it was never sent)."""
    if out is None:
        return None
    detail = " ".join(filter(None, [out.error_message, out.error_advice])) or out.smtp_text
    return Delivery(out.status, out.get_status_display(), _TONES.get(out.status, "info"), detail)


@transaction.atomic
def add_note(ticket: Ticket, *, author, body: str) -> Message:
    """An internal note on the ticket (never sent); every member who may see the ticket may write one."""
    now = timezone.now()
    note = Message.objects.create(
        tenant_id=ticket.tenant_id,
        ticket=ticket,
        kind=MessageKind.NOTE,
        author=author,
        text=body.strip(),
        created_at=now,
    )
    Ticket.objects.filter(pk=ticket.pk).update(updated_at=now)
    lists.mark_read(ticket, author)
    search.reindex(ticket)
    return note
