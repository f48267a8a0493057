"""Quarantine: inbound mail that could not become a ticket entry, for admins to inspect, reprocess or discard."""

from __future__ import annotations

import re

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.access import admin_required, tenant_reverse
from mailboxes import blobs
from mailboxes.models import InboundMessage, InboundStatus
from tickets import quarantine

HEADER_BYTES = 64 * 1024
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def get_inbound(request: HttpRequest, inbound_id: int) -> InboundMessage:
    """The tenant's inbound message; 404 for anyone else's."""
    row = (
        InboundMessage.objects.for_tenant(request.tenant)
        .select_related("mailbox", "ticket")
        .filter(pk=inbound_id)
        .first()
    )
    if row is None:
        raise Http404("No such message.")
    return row


def raw_headers(row: InboundMessage) -> str:
    """The header block of the stored raw message, as text (undecoded, so nothing is hidden)."""
    try:
        with blobs.open_blob(row.raw_key) as f:
            head = f.read(HEADER_BYTES)
    except (FileNotFoundError, OSError):
        return ""
    end = _HEADER_END.search(head)
    return head[: end.start() if end else len(head)].decode("utf-8", "replace").replace("\r\n", "\n")


@admin_required
def quarantine_list(request: HttpRequest):
    rows = (
        InboundMessage.objects.for_tenant(request.tenant)
        .quarantined()
        .select_related("mailbox")
        .order_by("-received_at", "-pk")
    )
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    return render(request, "mailboxes/quarantine.html", {"page": page})


@admin_required
def quarantine_detail(request: HttpRequest, inbound_id: int):
    row = get_inbound(request, inbound_id)
    return render(request, "mailboxes/quarantine_detail.html", {"row": row, "headers": raw_headers(row)})


@admin_required
def download(request: HttpRequest, inbound_id: int):
    row = get_inbound(request, inbound_id)
    try:
        stream = blobs.open_blob(row.raw_key)
    except (FileNotFoundError, OSError) as exc:
        raise Http404("The raw message is not in storage.") from exc
    return FileResponse(
        stream, as_attachment=True, filename=f"message-{row.pk}.eml", content_type="message/rfc822"
    )


@require_POST
@admin_required
def reprocess(request: HttpRequest, inbound_id: int):
    row = get_inbound(request, inbound_id)
    if row.status != InboundStatus.QUARANTINED:
        messages.info(request, "This message is not in quarantine any more.")
        return redirect(tenant_reverse(request.tenant, "quarantine:detail", row.pk))
    try:
        outcome = quarantine.reprocess(row)
    except blobs.StorageError as exc:
        messages.error(request, f"{exc.message} Nothing changed; try again in a minute.")
        return redirect(tenant_reverse(request.tenant, "quarantine:detail", row.pk))
    if outcome.kind == "quarantined":
        messages.error(request, f"Still quarantined: {outcome.reason}")
        return redirect(tenant_reverse(request.tenant, "quarantine:detail", row.pk))
    messages.success(request, f"Processed again: {outcome.kind.replace('-', ' ')}.")
    return redirect(tenant_reverse(request.tenant, "quarantine:list"))


@require_POST
@admin_required
def discard(request: HttpRequest, inbound_id: int):
    row = get_inbound(request, inbound_id)
    quarantine.discard(row)
    messages.success(request, "Discarded. The raw message is kept in the ledger.")
    return redirect(tenant_reverse(request.tenant, "quarantine:list"))
