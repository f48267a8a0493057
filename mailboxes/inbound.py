"""The inbound ledger: raw bytes into object storage, then an `InboundMessage` row, before anything else.

Exactly once starts here. A message fetched from IMAP is recorded by (mailbox, folder, UIDVALIDITY, UID),
unique in the database, in the same transaction that advances the folder's `last_uid`; its raw bytes are in
storage (key = sha256) before that transaction starts. So after a crash at any point either the row exists
(and the poller processes it, or its after-import action, on the next run) or the folder state was not
advanced (and the message is fetched again, landing on the same content-addressed key).

A message whose bytes this mailbox already recorded (the same mail seen again after a UIDVALIDITY change, or
delivered twice) is recorded as a duplicate and never processed again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import Tenant
from mailboxes import blobs
from mailboxes.models import FolderState, InboundMessage, InboundStatus, Mailbox

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FIELD = re.compile(rb"^(message-id|from|subject)[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.I | re.M)
_MAX_HEADER_SCAN = 64 * 1024


@dataclass(frozen=True)
class Summary:
    """What the ledger shows before parsing: enough for the quarantine list and for dedupe."""

    message_id: str
    sender: str
    subject: str


@dataclass
class Fetched:
    """One message as fetched from a folder, and where its raw bytes are stored (`blob`, once submitted)."""

    uid: int
    raw: bytes
    internal_date: datetime | None = None
    blob: blobs.Blob | None = None


def summarize(raw: bytes) -> Summary:
    """Message-ID, From and Subject read from the header block only (cheap; the full parse comes later)."""
    from mailboxes.parsing import decode_header_text, parse_message_ids

    head = raw[:_MAX_HEADER_SCAN]
    end = _HEADER_END.search(head)
    if end:
        head = head[: end.start()]
    found: dict[bytes, str] = {}
    for m in _FIELD.finditer(head):
        name = m.group(1).lower()
        if name not in found:
            found[name] = m.group(2).decode("utf-8", "surrogateescape")
    ids = parse_message_ids([found[b"message-id"]]) if b"message-id" in found else ()
    sender = decode_header_text(found.get(b"from", ""))
    subject = decode_header_text(found.get(b"subject", ""))
    return Summary(ids[0] if ids else "", sender[:320], subject[:998])


def _row(mailbox: Mailbox, raw: bytes, blob: blobs.Blob, **fields) -> InboundMessage:
    summary = summarize(raw)
    tenant_id = fields.pop("tenant_id", None) or mailbox.tenant_id
    return InboundMessage(
        tenant_id=tenant_id,
        mailbox=mailbox,
        message_id=summary.message_id[:998],
        sha256=blob.sha256,
        raw_key=blob.key,
        size=blob.size,
        sender=summary.sender.replace("\x00", ""),
        subject=summary.subject.replace("\x00", ""),
        **fields,
    )


def record_batch(
    mailbox: Mailbox,
    state: FolderState,
    items: list[Fetched],
    *,
    connected_at: datetime | None,
    advance_to: int | None = None,
) -> list[tuple[InboundMessage, bytes]]:
    """Record a batch of fetched messages whose raw bytes are already in storage (`Fetched.blob`), advancing
    the folder state in the same commit.

    Returns the new rows, each with its raw bytes (so the caller need not download them again); those with
    status `stored` need processing, `duplicate` ones do not. Rows already recorded (a re-fetch after a
    crash) are skipped.
    """
    if not items:
        return []
    blobs_by_uid = {item.uid: item.blob for item in items}
    uids = [item.uid for item in items]
    with transaction.atomic():
        known = set(
            InboundMessage.objects.filter(
                mailbox=mailbox, folder=state.folder, uidvalidity=state.uidvalidity, uid__in=uids
            ).values_list("uid", flat=True)
        )
        shas = {b.sha256 for b in blobs_by_uid.values()}
        seen_shas = set(
            InboundMessage.objects.filter(mailbox=mailbox, sha256__in=shas).values_list("sha256", flat=True)
        )
        rows: list[tuple[InboundMessage, bytes]] = []
        for item in items:
            if item.uid in known:
                continue
            blob = blobs_by_uid[item.uid]
            duplicate = blob.sha256 in seen_shas
            seen_shas.add(blob.sha256)
            is_history = bool(
                connected_at
                and item.internal_date
                and item.internal_date < connected_at.replace(microsecond=0)
            )
            row = _row(
                mailbox,
                item.raw,
                blob,
                folder=state.folder,
                uidvalidity=state.uidvalidity,
                uid=item.uid,
                is_history=is_history,
                source="imap",
                status=InboundStatus.DUPLICATE if duplicate else InboundStatus.STORED,
                outcome="duplicate" if duplicate else "",
                processed_at=timezone.now() if duplicate else None,
            )
            rows.append((row, item.raw))
        InboundMessage.objects.bulk_create([r for r, _ in rows])
        last = max(uids + ([advance_to] if advance_to else []))
        history_max = max((r.uid for r, _ in rows if r.is_history), default=0)
        FolderState.objects.filter(pk=state.pk).update(
            last_uid=max(state.last_uid, last),
            history_until_uid=max(state.history_until_uid, history_max),
            updated_at=timezone.now(),
        )
        state.last_uid = max(state.last_uid, last)
        state.history_until_uid = max(state.history_until_uid, history_max)
    for row, _ in rows:
        row.mailbox = mailbox  # share the loaded mailbox and tenant: no query per message later
        row.tenant = mailbox.tenant
    return rows


def record_raw(
    raw: bytes,
    *,
    mailbox: Mailbox | None,
    tenant: Tenant | None = None,
    source: str = "eml",
    is_history: bool = False,
) -> InboundMessage:
    """Store one raw message that did not come from IMAP (import_eml, API) and record it.

    Importing the same bytes into the same mailbox twice returns the existing row.
    """
    tenant = tenant or mailbox.tenant
    blob = blobs.put(raw)
    existing = InboundMessage.objects.filter(tenant=tenant, mailbox=mailbox, sha256=blob.sha256).first()
    if existing is not None:
        return existing
    row = _row(mailbox, raw, blob, tenant_id=tenant.pk, source=source, is_history=is_history)
    try:
        row.save(force_insert=True)
    except IntegrityError:  # pragma: no cover - only with a uid, which eml imports do not have
        return InboundMessage.objects.get(tenant=tenant, mailbox=mailbox, sha256=blob.sha256)
    row.tenant = tenant
    row.mailbox = mailbox
    return row


def pending(mailbox: Mailbox) -> QuerySet[InboundMessage]:
    """Rows recorded but not processed (a crash between record and process); oldest first."""
    return InboundMessage.objects.filter(mailbox=mailbox, status=InboundStatus.STORED).order_by("pk")


def awaiting_after_import(mailbox: Mailbox, folder: str, uidvalidity: int) -> QuerySet[InboundMessage]:
    """Rows whose processing is committed but whose server-side action (read/move/delete) did not run yet."""
    return InboundMessage.objects.filter(
        mailbox=mailbox, folder=folder, uidvalidity=uidvalidity, after_import_done=False, uid__isnull=False
    ).exclude(status=InboundStatus.STORED)


def mark_after_import_done(ids: Iterable[int]) -> None:
    InboundMessage.objects.filter(pk__in=list(ids)).update(after_import_done=True)


def quarantined(tenant: Tenant) -> QuerySet[InboundMessage]:
    return InboundMessage.objects.for_tenant(tenant).filter(Q(status=InboundStatus.QUARANTINED))


# --- big attachments: decoded straight into storage ------------------------------------------------------------

STREAM_MIN_BYTES = 1024 * 1024  # base64 bodies larger than this never go through the MIME parser
STREAM_MARKER = b"\x00helpdesk-streamed-part:"
_B64_CTE = re.compile(rb"^content-transfer-encoding[ \t]*:[ \t]*\"?base64", re.I | re.M)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_NESTED_MESSAGE = re.compile(rb"^content-type[ \t]*:[ \t]*\"?message/(?:rfc822|global)", re.I | re.M)
_LAST_FIELD = re.compile(
    rb"^(content-type|content-transfer-encoding|content-disposition)[ \t]*:([^\r\n]*)", re.I | re.M
)
_DECODE_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StreamedPart:
    blob: blobs.Blob
    head: bytes  # the first bytes, so the parser still sniffs the right type and names the file


def _part_fields(before: bytes) -> dict[bytes, bytes]:
    """Content-* fields of the part whose body starts right after `before` (its last 4 KB)."""
    head = before[-4096:]
    blank = max(head.rfind(b"\n\r\n"), head.rfind(b"\n\n"))
    boundary = head.rfind(b"\n--", 0, blank if blank > 0 else len(head))
    fields: dict[bytes, bytes] = {}
    for m in _LAST_FIELD.finditer(head[boundary + 1 if boundary >= 0 else 0 :]):
        fields[m.group(1).lower()] = m.group(2).strip().lower()
    return fields


def _decode_run(run: memoryview) -> tuple[blobs.Blob, bytes] | None:
    """Decode one base64 body to storage in chunks; None when it is not clean base64 (the parser decides)."""
    import base64
    import binascii
    import hashlib
    import tempfile

    digest = hashlib.sha256()
    head = b""
    carry = b""
    with tempfile.TemporaryFile() as spool:
        for offset in range(0, len(run), _DECODE_CHUNK):
            text = carry + bytes(run[offset : offset + _DECODE_CHUNK]).replace(b"\r", b"").replace(b"\n", b"")
            usable = len(text) - len(text) % 4
            carry = text[usable:]
            try:
                data = base64.b64decode(text[:usable], validate=True)
            except (binascii.Error, ValueError):
                return None
            if b"=" in text[: usable - 4]:
                return None  # padding in the middle: concatenated encodings, leave it to the parser
            digest.update(data)
            if len(head) < 4096:
                head += data[: 4096 - len(head)]
            spool.write(data)
        if carry:
            return None
        blob = blobs.put_file(spool, sha256=digest.hexdigest())
    return blob, head


def stream_large_parts(raw: bytes) -> tuple[bytes, dict[str, StreamedPart]]:
    """Decode big base64 attachments of `raw` straight into storage and return a small stand-in message.

    In the stand-in each such body is replaced by its first 4 KB plus a marker, so the parser still reads
    the part's headers, name and type, while the megabytes never pass through it (a 25 MB attachment would
    otherwise be held three times over). `streamed` maps each marker token to the stored blob.
    """
    pieces: list[bytes] = []
    streamed: dict[str, StreamedPart] = {}
    view = memoryview(raw)
    last = 0
    # Inside an attached message the parser keeps the whole message as one file: leave those alone.
    nested = _NESTED_MESSAGE.search(raw)
    stop_at = nested.start() if nested else len(raw)
    # Candidate bodies: after a part header saying base64, from the blank line to the next boundary line.
    # (A plain scan: a regex repeating over hundreds of thousands of lines would itself cost ~100 MB.)
    for m in _B64_CTE.finditer(raw):
        if m.start() > stop_at:
            break
        blank = _BLANK_LINE.search(raw, m.end(), m.end() + 8192)
        if blank is None or blank.start() < last:
            continue
        start = blank.end()
        boundary = raw.find(b"\n--", start)
        end = len(raw) if boundary < 0 else boundary + 1
        if end - start < STREAM_MIN_BYTES:
            continue
        fields = _part_fields(raw[max(0, start - 4096) : start])
        ctype = fields.get(b"content-type", b"")
        if b"base64" not in fields.get(b"content-transfer-encoding", b""):
            continue
        if not ctype or ctype.startswith((b"text/", b"multipart/", b"message/")) or b"tnef" in ctype:
            continue
        if b"winmail.dat" in fields.get(b"content-disposition", b"") or b"winmail.dat" in ctype:
            continue
        decoded = _decode_run(view[start:end])
        if decoded is None:
            continue
        blob, head = decoded
        token = f"{len(streamed)}:{blob.sha256}"
        streamed[token] = StreamedPart(blob, head)
        import base64

        linesep = b"\r\n" if raw[end - 2 : end] == b"\r\n" else b"\n"
        stand_in = base64.encodebytes(head + STREAM_MARKER + token.encode()).replace(b"\n", linesep)
        pieces += [raw[last:start], stand_in]
        last = end
    if not streamed:
        return raw, {}
    pieces.append(raw[last:])
    return b"".join(pieces), streamed


def streamed_part(payload: bytes, streamed: dict[str, StreamedPart]) -> StreamedPart | None:
    """The stored part a stand-in payload points at, if it is one."""
    if not streamed or STREAM_MARKER not in payload[-200:]:
        return None
    token = payload.rsplit(STREAM_MARKER, 1)[1].decode("ascii", "replace")
    return streamed.get(token)
