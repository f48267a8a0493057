"""The copy of a sent mail in the mailbox's IMAP Sent folder, for providers that do not keep one themselves
(Gmail and Microsoft 365 do, so nothing is appended there: it would show twice). Made once: the row is
claimed (`appended_to_sent`) before the APPEND."""

from __future__ import annotations

import logging

from mailboxes import blobs
from mailboxes.models import OutboundEmail, OutboundKind, OutboundStatus

log = logging.getLogger(__name__)

SENT_COPY_KINDS = (OutboundKind.REPLY, OutboundKind.FORWARD, OutboundKind.AUTO_REPLY)


def wants_sent_copy(row: OutboundEmail) -> bool:
    """Append to the IMAP Sent folder: the mailbox asks for it and its provider does not do it itself."""
    mailbox = row.mailbox
    return bool(
        mailbox is not None
        and row.kind in SENT_COPY_KINDS
        and mailbox.save_to_sent
        and not mailbox.provider_saves_sent
        and mailbox.imap_host
    )


def enqueue_copy(outbound_id: int) -> None:
    from mailboxes.tasks_outbound import append_sent_copy

    try:
        append_sent_copy.delay(outbound_id)
    except Exception:
        log.exception("could not enqueue the Sent copy of outbound %s", outbound_id)


def append(outbound: OutboundEmail) -> bool:
    """Put the sent mail into the mailbox's Sent folder once (claimed first); True when appended now."""
    from mailboxes import imap

    row = OutboundEmail.objects.select_related("mailbox").get(pk=outbound.pk)
    if (
        row.status != OutboundStatus.SENT
        or row.appended_to_sent
        or not row.raw_key
        or not wants_sent_copy(row)
    ):
        return False
    if not OutboundEmail.objects.filter(pk=row.pk, appended_to_sent=False).update(appended_to_sent=True):
        return False
    try:
        raw = blobs.read(row.raw_key)
        with imap.session(row.mailbox) as client:
            folder = row.mailbox.folder_sent or _sent_folder(client)
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.append(folder, raw, flags=(b"\\Seen",), msg_time=row.sent_at)
    except BaseException:
        OutboundEmail.objects.filter(pk=row.pk).update(appended_to_sent=False)
        raise
    return True


def _sent_folder(client) -> str:
    from mailboxes import imap

    try:
        _names, roles = imap.special_use_folders(client)
    except Exception:
        roles = {}
    return roles.get("sent") or "Sent"
