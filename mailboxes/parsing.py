"""Raw RFC 5322 bytes -> `ParsedMail`, a frozen snapshot of everything the helpdesk needs.

Pure (stdlib `email` with `email.policy.default`, tnefparse, filetype): no Django, no I/O.
`parse` never raises. Whatever it cannot decode it replaces; whatever is too big, too deep or too
slow it reports in `limit_exceeded` so the caller can quarantine the raw bytes it already stored.

This module is the entry point and assembles the result; the work is done by sub-domain:
`rawmail` (raw bytes -> message tree, limits), `mimeparts` (the walk to bodies and files),
`attachments` (names, types, winmail.dat), `headers` (field values, message ids, dates),
`addresses` and `charsets`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message

from mailboxes.addresses import Address, parse_addresses
from mailboxes.attachments import Attachment, AttachmentKind, safe_filename
from mailboxes.charsets import clean_text, decode_bytes, decode_raw
from mailboxes.headers import (
    charset_hints,
    decode_header_text,
    first,
    header_map,
    parse_date,
    parse_message_ids,
    surrogate_id,
    tidy,
    unfold,
)
from mailboxes.mimeparts import Walk, read_parts
from mailboxes.rawmail import DEFAULT_LIMITS, Limits, read_message, within_limits

__all__ = [
    "CLASSIFY_HEADERS",
    "DEFAULT_LIMITS",
    "Address",
    "Attachment",
    "AttachmentKind",
    "Limits",
    "ParsedMail",
    "clean_text",
    "decode_bytes",
    "decode_header_text",
    "parse",
    "parse_addresses",
    "parse_message_ids",
    "safe_filename",
]


@dataclass(frozen=True, slots=True)
class ParsedMail:
    subject: str
    from_addr: Address | None
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    message_id: str
    message_id_is_surrogate: bool
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    date: dt.datetime | None
    text_body: str
    html_body: str | None  # raw customer HTML: sanitise with sanitize.clean_html before showing
    attachments: tuple[Attachment, ...]
    headers: Mapping[str, str]  # lower-case name -> value, for classification (CLASSIFY_HEADERS)
    content_type: str
    report_type: str | None  # multipart/report only: delivery-status, disposition-notification...
    raw_size: int
    defects: tuple[str, ...]
    limit_exceeded: str | None  # set: bodies and attachments were not extracted; quarantine


# Headers `automatic.classify` and `spam_verdict` read (first occurrence, decoded).
CLASSIFY_HEADERS = tuple(
    [
        "auto-submitted",
        "precedence",
        "x-precedence",
        "x-autoreply",
        "x-autorespond",
        "x-auto-response-suppress",
        "list-id",
        "list-unsubscribe",
        "list-post",
        "return-path",
        "x-failed-recipients",
        "x-spam-flag",
        "x-spam-status",
        "x-spam-score",
        "x-spam-level",
        "x-loop",
        "x-ms-exchange-generated-message-source",
        "x-ms-exchange-inbox-rules-loop",
        "feedback-id",
        "x-mailer",
        "sender",
        "delivered-to",
        "x-original-to",
        "content-class",
    ]
)

_MAX_DEFECTS = 50


def parse(raw: bytes, *, limits: Limits = DEFAULT_LIMITS) -> ParsedMail:
    """Parse raw message bytes; never raises. When `limit_exceeded` is set only the headers were
    read and the caller should quarantine the message."""
    try:
        return _parse(bytes(raw), limits)
    except Exception as exc:  # the last line of "never raises": report instead of crashing
        data = raw if isinstance(raw, bytes) else b""
        return _empty(data, f"the parser failed ({type(exc).__name__})")


def _empty(raw: bytes, reason: str) -> ParsedMail:
    return ParsedMail(
        subject="",
        from_addr=None,
        reply_to=(),
        to=(),
        cc=(),
        message_id=surrogate_id(memoryview(raw)),
        message_id_is_surrogate=True,
        in_reply_to=(),
        references=(),
        date=None,
        text_body="",
        html_body=None,
        attachments=(),
        headers={},
        content_type="text/plain",
        report_type=None,
        raw_size=len(raw),
        defects=(reason,),
        limit_exceeded=reason,
    )


def _parse(raw: bytes, limits: Limits) -> ParsedMail:
    deadline = time.monotonic() + limits.time_budget_s
    defects: list[str] = []
    message, start, linesep, limit, aside = read_message(raw, limits, deadline, defects)
    headers = header_map(message)
    hints = charset_hints(message, headers)
    text, html, attachments = "", None, ()
    if limit is None:
        walk = Walk(
            hints=hints, linesep=linesep, deadline=deadline, limits=limits, defects=defects, aside=aside
        )
        bodies, limit = within_limits(lambda: read_parts(message, walk))
        if bodies is not None:
            text, html, attachments = bodies
    if limit:
        defects.append(f"limit: {limit}")
        text, html, attachments = "", None, ()
    return _assemble(raw, start, message, headers, hints, text, html, attachments, defects, limit)


def _assemble(
    raw: bytes,
    start: int,
    message: Message,
    headers: Mapping[str, list[str]],
    hints: list[str],
    text: str,
    html: str | None,
    attachments: tuple[Attachment, ...],
    defects: list[str],
    limit: str | None,
) -> ParsedMail:
    get = headers.get
    from_addrs = parse_addresses(get("from", []), hints, defects)
    reply_to = parse_addresses(get("reply-to", []), hints, defects)
    if not from_addrs:
        # No usable From: the Sender, else the Reply-To, is who a reply would reach.
        from_addrs = parse_addresses(get("sender", []), hints, defects) or reply_to
        if from_addrs:
            defects.append("no usable From: sender taken from Sender/Reply-To")
    ids = parse_message_ids(get("message-id", [])[:1])
    message_id = ids[0] if ids else surrogate_id(memoryview(raw)[start:])
    try:
        ctype = message.get_content_type()
        report_type = message.get_param("report-type") if ctype == "multipart/report" else None
    except Exception:
        ctype, report_type = "text/plain", None
    classify = {}
    for name in CLASSIFY_HEADERS:
        value = first(headers, name)
        if value is not None:
            classify[name] = tidy(decode_raw(unfold(value), hints))[:2000]
    return ParsedMail(
        subject=decode_header_text(first(headers, "subject") or "", hints)[:2000],
        from_addr=from_addrs[0] if from_addrs else None,
        reply_to=reply_to,
        to=parse_addresses(get("to", []), hints, defects),
        cc=parse_addresses(get("cc", []), hints, defects),
        message_id=message_id,
        message_id_is_surrogate=not ids,
        in_reply_to=parse_message_ids(get("in-reply-to", [])),
        references=parse_message_ids(get("references", [])),
        date=parse_date(first(headers, "date")),
        text_body=text,
        html_body=html,
        attachments=attachments,
        headers=classify,
        content_type=ctype,
        report_type=str(report_type).strip().lower() if report_type else None,
        raw_size=len(raw),
        defects=tuple(dict.fromkeys(clean_text(d) for d in defects))[:_MAX_DEFECTS],
        limit_exceeded=limit,
    )
