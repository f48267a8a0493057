"""Message bodies and files: the sandboxed iframe document, the processing trace, the raw original, attachments and
inline images.

Everything here is reached through the ticket it belongs to (tickets.access): 404 for whoever may not see it.
Responses carry their own locked-down headers, because what they hold comes from strangers.
"""

import mimetypes
import re

from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import render
from django.utils.html import escape
from django.views.decorators.http import require_GET

from accounts.access import member_required
from mailboxes.models import InboundMessage
from tickets import thread
from tickets.access import get_attachment, get_message, get_ticket

FRAME_STYLE = (
    "html{color-scheme:light}body{margin:0;padding:2px 0;font:14px/1.55 -apple-system,'Segoe UI',Roboto,"
    "'Helvetica Neue',Arial,sans-serif;color:#101828;overflow-wrap:anywhere}img{max-width:100%;height:auto}"
    "img[data-remote-src]{display:inline-block;min-width:16px;min-height:16px;background:#f2f4f7}"
    "pre{white-space:pre-wrap}blockquote{margin:8px 0;padding-left:12px;border-left:3px solid #d0d5dd;color:#475467}"
    "a{color:#4338ca}table{max-width:100%}"
)
FRAME_CSP = "default-src 'none'; img-src 'self' data:{remote}; style-src 'unsafe-inline'; frame-ancestors 'self'; form-action 'none'; sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox"


def _locked_down(response: HttpResponse, csp: str = "default-src 'none'; sandbox") -> HttpResponse:
    response["Content-Security-Policy"] = csp
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-cache"
    return response


@require_GET
@member_required
def message_body(request, number: int, message_id: int):
    """The document inside a message's sandboxed iframe, with its own strict CSP: no script can run, and
    no image loads from elsewhere unless the agent clicked "Show images" (?images=1)."""
    ticket = get_ticket(request, number)
    message = get_message(request, ticket, message_id)
    show_remote = request.GET.get("images") == "1"
    if message.html:
        body = thread.render_body(message, show_remote=show_remote).html
    else:
        body = f"<pre>{escape(message.text)}</pre>"
    document = (
        '<!doctype html><html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
        f'<base target="_blank"><style>{FRAME_STYLE}</style></head><body>{body}</body></html>'
    )
    response = HttpResponse(document, content_type="text/html; charset=utf-8")
    return _locked_down(response, FRAME_CSP.format(remote=" https: http:" if show_remote else ""))


@require_GET
@member_required
def message_original(request, number: int, message_id: int):
    """The raw source of a message as received (or as sent), for admins; shown as plain text.

    Visibility first (404 for a ticket the member may not see), then the role (403 for agents)."""
    ticket = get_ticket(request, number)
    message = get_message(request, ticket, message_id)
    if not request.membership.is_admin:
        raise PermissionDenied("Only admins can view the original of a message.")
    key = message.inbound.raw_key if message.inbound_id and message.inbound else ""
    if not key:
        sent = message.outbound.exclude(raw_key="").order_by("-created_at").first()
        key = sent.raw_key if sent else ""
    if not key or not default_storage.exists(key):
        raise Http404("The original of this message is not stored.")
    download = request.GET.get("download") == "1"
    response = FileResponse(
        default_storage.open(key, "rb"),
        as_attachment=download,
        filename=f"ticket-{ticket.number}-message-{message.pk}.eml",
        content_type="message/rfc822" if download else "text/plain; charset=utf-8",
    )
    return _locked_down(response)


@require_GET
@member_required
def message_trace(request, number: int, message_id: int):
    """How an inbound mail was processed (steps, timings, threading signal, why no auto-reply): the fragment
    the thread loads when an agent opens a message's trace."""
    ticket = get_ticket(request, number)
    message = get_message(request, ticket, message_id)
    if not message.inbound_id:
        raise Http404("This message was not received by mail.")
    inbound = InboundMessage.objects.select_related("mailbox").only(*TRACE_FIELDS).get(pk=message.inbound_id)
    return render(request, "tickets/_trace.html", {"inbound": inbound, "message": message})


# What templates/tickets/_trace.html shows of the ledger row (not the raw headers, not the mailbox's secrets).
TRACE_FIELDS = (
    "status",
    "outcome",
    "trace",
    "is_history",
    "received_at",
    "folder",
    "uid",
    "mailbox__email",
)


# Types a browser could run or render as a page are always sent as opaque bytes.
ACTIVE_TYPES = re.compile(r"html|xml|svg|javascript|ecmascript|x-sh|pdf|x-shockwave", re.I)


def _safe_filename(name: str) -> str:
    name = re.sub(r"[\x00-\x1f\x7f/\\]+", "_", name or "").strip(" .") or "attachment"
    return name[:200]


def _open_stored(key: str):
    try:
        return default_storage.open(key, "rb")
    except (FileNotFoundError, OSError):
        raise Http404("This file is no longer in storage.") from None


@require_GET
@member_required
def attachment(request, attachment_id: int):
    """Download an attachment of a ticket the member may see; always as a download, never rendered."""
    item = get_attachment(request, attachment_id)
    content_type = item.content_type or mimetypes.guess_type(item.filename)[0] or "application/octet-stream"
    if ACTIVE_TYPES.search(content_type) or "/" not in content_type:
        content_type = "application/octet-stream"
    response = FileResponse(
        _open_stored(item.storage_key),
        as_attachment=True,
        filename=_safe_filename(item.filename),
        content_type=content_type,
    )
    return _locked_down(response)


@require_GET
@member_required
def inline_image(request, attachment_id: int):
    """An inline (cid:) image for a message's iframe; only plain raster image types are served inline."""
    item = get_attachment(request, attachment_id)
    if item.content_type not in thread.INLINE_IMAGE_TYPES:
        raise Http404("Not an inline image.")
    response = FileResponse(_open_stored(item.storage_key), content_type=item.content_type)
    response["Content-Disposition"] = "inline"
    response = _locked_down(response)
    response["Cache-Control"] = "private, max-age=3600"
    return response
