"""Outgoing mail as bytes: headers we can vouch for, text + HTML alternatives, attachments streamed from storage.

Everything that goes into a header passes through here and is cleaned on the way: CR, LF and other control
characters never reach a header (no header injection from a subject or a display name a customer wrote),
addresses are parsed and validated, Message-IDs taken from inbound mail are kept only when they are
well-formed, deduplicated and capped. `build()` turns an `OutboundEmail` row into the .eml: attachments are
not read into memory but base64-encoded chunk by chunk from storage into a spooled temporary file, which is
then stored and streamed to the SMTP server.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import hashlib
import re
import secrets
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.header import Header
from email.headerregistry import Address, HeaderRegistry
from email.utils import format_datetime, formataddr, getaddresses
from typing import IO, Any
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.safestring import SafeString, mark_safe

from mailboxes import signatures
from mailboxes.headers import split_outside_quotes
from mailboxes.smtp_errors import AttachmentMissing, InvalidAddress

MAX_REFERENCES = 20
MAX_NAME = 200
MAX_SUBJECT = 900
SPOOL_IN_MEMORY = 4 * 1024 * 1024
_B64_LINE = 57  # raw bytes per 76-character base64 line
_B64_CHUNK = _B64_LINE * 1024

# SMTP policy: CRLF line ends, RFC 2047 encoded words for non-ASCII (no SMTPUTF8 needed), 78-column folding.
POLICY = email.policy.SMTP
_REGISTRY = HeaderRegistry()
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
_ID_PART = r"[\x21-\x3b\x3d\x3f\x41-\x7e]{1,250}"  # printable ASCII without < > @
_MSG_ID = re.compile(rf"<?({_ID_PART}@{_ID_PART})>?")
_BRACKETED = re.compile(r"<[^<>]*>")
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,75}$")
# Headers that the row itself decides; extra_headers may never set or repeat them.
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "From", "To", "Cc", "Bcc", "Subject", "Date", "Message-ID", "In-Reply-To", "References", "Reply-To",
        "Sender", "Return-Path", "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Received",
    )
)  # fmt: skip

AUTOMATIC_HEADERS = {
    "auto_reply": {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"},
    "notification": {"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"},
}


# --- header values ----------------------------------------------------------------------------------------


def clean_text(value: Any, limit: int = MAX_SUBJECT) -> str:
    """One line of header text: control characters (CR, LF, NUL, ...) become spaces, runs of space collapse."""
    text = _CONTROL.sub(" ", str(value or ""))
    return " ".join(text.split())[:limit]


def clean_subject(subject: str) -> str:
    return clean_text(subject) or "(no subject)"


def clean_msg_id(value: str | None) -> str:
    """``<id@host>`` when ``value`` holds one well-formed Message-ID, else ""."""
    if not value:
        return ""
    value = value.strip()
    bracketed = _BRACKETED.findall(value)
    if len(bracketed) == 1:
        value = bracketed[0]
    match = _MSG_ID.fullmatch(value)
    return f"<{match.group(1)}>" if match else ""


def msg_ids(values: Iterable[str] | str | None) -> list[str]:
    """Every well-formed Message-ID found in the values (each may be a whole References header)."""
    if not values:
        return []
    if isinstance(values, str):
        values = [values]
    found: list[str] = []
    for value in values:
        value = str(value or "")
        parts = _BRACKETED.findall(value) or value.split()
        found += [mid for mid in (clean_msg_id(p) for p in parts) if mid]
    return found


def thread_references(references: Iterable[str] | str | None, in_reply_to: str = "") -> list[str]:
    """References for a reply: valid ids only, each once (first place kept), ending with In-Reply-To, last 20."""
    ids = msg_ids(references)
    parent = clean_msg_id(in_reply_to)
    if parent:
        ids.append(parent)
    unique = list(dict.fromkeys(ids))
    if parent and unique and unique[-1] != parent:  # the parent ends the chain even if it appeared earlier
        unique.remove(parent)
        unique.append(parent)
    return unique[-MAX_REFERENCES:]


# --- addresses ----------------------------------------------------------------------------------------------


def _domain_ascii(domain: str) -> str:
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidAddress(f"“{domain}” is not a valid email domain.") from exc


def parse_addresses(values: Iterable[str] | str | None) -> list[Address]:
    """Validated addresses from strings such as ``"Bob <bob@example.com>, carol@example.org"``.

    Raises InvalidAddress naming the first bad one. Display names are cleaned of control characters.
    """
    if not values:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[Address] = []
    for value in values:
        raw = str(value or "")
        text = clean_text(raw, 2000)
        if not text:
            continue
        try:
            header = _REGISTRY("to", text)
            addresses = list(header.addresses)
            defects = header.defects
        except Exception:  # Python's header parser raises IndexError on some garbage
            addresses, defects = [], [True]
        if defects or not addresses:
            raise InvalidAddress(f"“{text[:120]}” is not a valid email address.")
        for address in addresses:
            out.append(make_address(address.display_name, address.addr_spec))
    return out


def make_address(name: str, addr: str) -> Address:
    """An Address from a display name and an address, both checked; raises InvalidAddress."""
    addr = (addr or "").strip()
    local, _, domain = addr.rpartition("@")
    if not local or not domain or any(c.isspace() or ord(c) < 32 for c in addr):
        raise InvalidAddress(f"“{clean_text(addr, 120)}” is not a valid email address.")
    domain = _domain_ascii(domain.lower())
    try:
        validate_email(f"{local}@{domain}")
    except ValidationError as exc:
        raise InvalidAddress(f"“{clean_text(addr, 120)}” is not a valid email address.") from exc
    if local.startswith('"') or not _DOT_ATOM.fullmatch(local):
        raise InvalidAddress(
            f"“{clean_text(addr, 120)}” is not an address we can send to (unusual characters before the @)."
        )
    if not local.isascii():
        raise InvalidAddress(
            f"“{clean_text(addr, 120)}” has non-ASCII characters before the @, which we cannot send to."
        )
    return Address(display_name=clean_text(name, MAX_NAME), username=local, domain=domain)


def format_addresses(addresses: Iterable[Address]) -> list[str]:
    return [str(a) for a in addresses]


def unique_addresses(*groups: Iterable[Address]) -> list[list[Address]]:
    """The groups with every address kept only at its first place (To before Cc before Bcc)."""
    seen: set[str] = set()
    result: list[list[Address]] = []
    for group in groups:
        kept = []
        for address in group:
            key = address.addr_spec.lower()
            if key not in seen:
                seen.add(key)
                kept.append(address)
        result.append(kept)
    return result


def envelope_recipients(*formatted: Iterable[str]) -> list[str]:
    """The bare addresses (RCPT TO) of stored recipients, each once.

    Stored values were made by `make_address` (dot-atom local parts, no quoted ones), so the address is
    what is inside the last <...>, or the whole value.
    """
    seen: dict[str, str] = {}
    for group in formatted:
        for value in group:
            value = str(value).strip()
            addr = value[value.rfind("<") + 1 : -1] if value.endswith(">") else value
            if "@" in addr:
                seen.setdefault(addr.lower(), addr)
    return list(seen.values())


# --- sender, Message-ID -----------------------------------------------------------------------------------


def sender_name(tenant, mailbox, agent=None) -> str:
    """The From display name: "Agnes Agent via Acme Support", or the mailbox's sender name (a tenant setting)."""
    from mailboxes.models import EmailSettings, SenderNameFormat

    email_settings = EmailSettings.for_tenant(tenant)
    if agent is not None and email_settings.sender_name_format == SenderNameFormat.AGENT_VIA:
        return clean_text(f"{agent.display_name} via {email_settings.sender_name or tenant.name}", MAX_NAME)
    if mailbox is not None:
        return clean_text(mailbox.from_header_name, MAX_NAME)
    return clean_text(email_settings.sender_name or tenant.name, MAX_NAME)


def from_header(tenant, mailbox, agent=None) -> str:
    return str(make_address(sender_name(tenant, mailbox, agent), mailbox.email))


def message_id_domain(mailbox=None) -> str:
    """Our domain for Message-IDs: MESSAGE_ID_DOMAIN, else SITE_URL's host, else the mailbox's domain."""
    if settings.MESSAGE_ID_DOMAIN:
        return settings.MESSAGE_ID_DOMAIN
    host = settings.SITE_URL.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
    if "." in host and any(c.isalpha() for c in host) and not host.endswith("localhost"):
        return host
    if mailbox is not None and "@" in mailbox.email:
        return _domain_ascii(mailbox.email.rsplit("@", 1)[1].lower())
    return "helpdesk.invalid"


_OUR_ID = re.compile(r"^<?hd\.([0-9a-f]{8,32})\.[0-9a-z]+@", re.I)


def new_message_id(*, ticket=None, mailbox=None) -> str:
    """A fresh Message-ID in our domain, carrying the ticket's reply token and 96 random bits."""
    token = ticket.reply_token if ticket is not None else "0" * 16
    return f"<hd.{token}.{secrets.token_hex(12)}@{message_id_domain(mailbox)}>"


def reply_token_of(message_id: str) -> str:
    """The reply token an id of ours carries ("" for any other id)."""
    match = _OUR_ID.match((message_id or "").strip())
    return match.group(1).lower() if match and match.group(1) != "0" * len(match.group(1)) else ""


# --- bodies and layout --------------------------------------------------------------------------------------

DEFAULT_LAYOUT = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="margin:0;padding:0;background:#ffffff;">
<div style="font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;font-size:14px;line-height:1.5;color:#101828;max-width:680px;padding:16px;">
{{ content }}
</div>
</body></html>"""


def html_from_text(text: str) -> SafeString:
    """HTML for a plain-text body: escaped, links clickable, line breaks kept."""
    return signatures.text_to_html(text)


def wrap_in_layout(tenant, content_html: str, variables: dict | None = None) -> str:
    """The tenant's HTML layout around ``content_html`` (their own or the default one)."""
    from mailboxes.models import EmailSettings

    layout = EmailSettings.for_tenant(tenant).html_layout.strip() or DEFAULT_LAYOUT
    if "content" not in layout:
        layout += "\n{{ content }}"
    context = dict(variables or signatures.variables(tenant=tenant))
    context["content"] = mark_safe(content_html)  # noqa: S308 - built by us from escaped parts
    try:
        return str(signatures.render_html(layout, context))
    except signatures.TemplateProblem:
        # A broken layout must not stop mail: fall back to the default and let the settings page say why.
        return str(signatures.render_html(DEFAULT_LAYOUT, context))


# --- the .eml ----------------------------------------------------------------------------------------------


@dataclass
class Built:
    """A built message in a (spooled) temporary file, positioned at 0; the caller closes it."""

    file: IO[bytes]
    size: int
    sha256: str


def _attachment_name(name: str) -> str:
    name = clean_text(name, 200).replace("/", "_").replace("\\", "_").strip(". ")
    return name or "attachment"


def headers_for(outbound) -> list[tuple[str, str]]:
    """Every header of the message in order, cleaned (the same list goes into the .eml)."""
    pairs: list[tuple[str, str]] = [("From", outbound.from_addr)]
    if outbound.to:
        pairs.append(("To", ", ".join(outbound.to)))
    if outbound.cc:
        pairs.append(("Cc", ", ".join(outbound.cc)))
    pairs += [
        ("Subject", clean_subject(outbound.subject)),
        ("Date", format_datetime(outbound.created_at)),
        ("Message-ID", outbound.message_id),
    ]
    parent = clean_msg_id(outbound.in_reply_to)
    if parent:
        pairs.append(("In-Reply-To", parent))
    refs = thread_references(outbound.references, parent)
    if refs:
        pairs.append(("References", " ".join(refs)))
    if outbound.reply_to:
        pairs.append(("Reply-To", outbound.reply_to))
    extra = dict(AUTOMATIC_HEADERS.get(outbound.kind, {}))
    for name, value in (outbound.extra_headers or {}).items():
        name = str(name).strip()
        if _HEADER_NAME.match(name) and name.lower() not in RESERVED_HEADERS:
            key = next((k for k in extra if k.lower() == name.lower()), name)
            extra[key] = clean_text(value, 900)
    pairs += [(k, v) for k, v in extra.items() if v]
    return pairs


# Headers that hold address lists (folded at commas, display names RFC 2047-encoded when not ASCII).
_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "reply-to"})
_ID_LIST_HEADERS = frozenset({"references"})
_MAX_LINE = 78


def _fold_words(name: str, words: list[str], sep: str) -> str:
    """``Name: w1<sep>w2...`` with a line break before a word that would pass 78 columns."""
    lines: list[str] = []
    line = f"{name}:"
    for i, word in enumerate(words):
        piece = (sep if i else " ") + word
        if i and len(line) + len(piece) > _MAX_LINE:
            lines.append(line + sep.rstrip())
            line = " " + word
        else:
            line += piece
    lines.append(line)
    return "\r\n".join(lines)


def _split_list(value: str) -> list[str]:
    """Split an address list at the commas between addresses (not those inside quoted names)."""
    return [p.strip() for p in split_outside_quotes(value, ",") if p.strip()]


def _encode_address(display: str, addr: str) -> str:
    return formataddr((display, addr), charset="utf-8")


def render_header(name: str, value: str) -> bytes:
    """One header, encoded (RFC 2047 for non-ASCII) and folded, with CRLF; the value is already cleaned."""
    value = clean_text(value, 4000)
    key = name.lower()
    if key in _ADDRESS_HEADERS:
        if value.isascii():  # stored lists are already valid RFC 5322 (made by make_address): just fold
            return (_fold_words(name, _split_list(value), ", ") + "\r\n").encode("ascii")
        words = [_encode_address(n, a) for n, a in getaddresses([value]) if a]
        return (_fold_words(name, words, ", ") + "\r\n").encode("ascii")
    if key in _ID_LIST_HEADERS:
        return (_fold_words(name, value.split(), " ") + "\r\n").encode("ascii")
    if value.isascii():
        return (_fold_words(name, value.split(" "), " ") + "\r\n").encode("ascii")
    encoded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n", maxlinelen=_MAX_LINE)
    return f"{name}: {encoded}\r\n".encode("ascii")


def _qp(text: str) -> bytes:
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")


def _param(name: str, value: str) -> str:
    """A MIME parameter: quoted when ASCII, RFC 2231 (utf-8'') otherwise."""
    if value.isascii():
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{name}="{escaped}"'
    return f"{name}*=utf-8''{quote(value, safe='')}"


def _text_part(subtype: str, body: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
    ).encode() + _qp(body)


def _content_type(ref: dict) -> str:
    content_type = str(ref.get("content_type") or "application/octet-stream").lower()
    maintype, _, subtype = content_type.partition("/")
    if not _MIME_TOKEN.fullmatch(maintype) or not _MIME_TOKEN.fullmatch(subtype):
        return "application/octet-stream"
    return f"{maintype}/{subtype}"


_MIME_TOKEN = re.compile(r"[a-z0-9][a-z0-9.+-]{0,126}")


def build(outbound, *, open_blob=None) -> Built:
    """The complete message for an OutboundEmail row, attachments streamed from storage.

    A small generator of our own rather than `email.message`: the headers are already validated and
    cleaned here, and building by hand is some ten times faster (the sender builds every mail it sends).
    Raises AttachmentMissing when an attachment's blob is gone (a permanent failure for this mail).
    """
    if open_blob is None:
        from mailboxes.blobs import open_blob
    token = secrets.token_hex(12)
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - handed to the caller
    digest = hashlib.sha256()
    size = 0

    def write(chunk: bytes) -> None:
        nonlocal size
        out.write(chunk)
        digest.update(chunk)
        size += len(chunk)

    try:
        write(b"".join(render_header(name, value) for name, value in headers_for(outbound)))
        write(b"MIME-Version: 1.0\r\n")
        refs = list(outbound.attachment_refs or [])
        if refs:
            mixed = f"=_hd_mixed_{token}"
            write(f'Content-Type: multipart/mixed; boundary="{mixed}"\r\n\r\n--{mixed}\r\n'.encode())
        if outbound.html:
            alternative = f"=_hd_alt_{token}"
            write(
                f'Content-Type: multipart/alternative; boundary="{alternative}"\r\n\r\n--{alternative}\r\n'.encode()
                + _text_part("plain", outbound.text or "")
                + f"\r\n--{alternative}\r\n".encode()
                + _text_part("html", outbound.html)
                + f"\r\n--{alternative}--\r\n".encode()
            )
        else:
            write(_text_part("plain", outbound.text or "") + b"\r\n")
        if refs:
            for ref in refs:
                filename = _attachment_name(ref.get("filename", ""))
                write(
                    (
                        f"--{mixed}\r\nContent-Type: {_content_type(ref)}; {_param('name', filename)}\r\n"
                        "Content-Transfer-Encoding: base64\r\n"
                        f"Content-Disposition: attachment; {_param('filename', filename)}\r\n\r\n"
                    ).encode()
                )
                _stream_base64(ref, open_blob, write)
            write(f"--{mixed}--\r\n".encode())
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return Built(out, size, digest.hexdigest())


def _stream_base64(ref: dict, open_blob, write) -> None:
    key = ref.get("key") or ""
    try:
        source = open_blob(key)
    except (FileNotFoundError, OSError) as exc:
        raise AttachmentMissing(
            f"The attachment “{ref.get('filename') or key}” could not be found in storage.", detail=str(exc)
        ) from exc
    except Exception as exc:  # S3 answers missing keys with its own exceptions
        if "NoSuchKey" in type(exc).__name__ or "404" in str(exc) or "Not Found" in str(exc):
            raise AttachmentMissing(
                f"The attachment “{ref.get('filename') or key}” could not be found in storage.",
                detail=str(exc),
            ) from exc
        raise
    with source:
        pending = b""
        while True:
            chunk = source.read(_B64_CHUNK)
            if not chunk:
                break
            pending += chunk
            whole = len(pending) - len(pending) % _B64_LINE
            if whole:
                write(_b64_lines(pending[:whole]))
                pending = pending[whole:]
        if pending:
            write(_b64_lines(pending))


def _b64_lines(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")  # 76-character lines


def parse_headers(raw_head: bytes) -> list[tuple[str, str]]:
    """The headers of a stored .eml (for the email log), decoded for display."""
    message = email.message_from_bytes(raw_head, policy=email.policy.default)
    return [(name, str(value)) for name, value in message.items()]


def recipients_of(outbound) -> Sequence[str]:
    return envelope_recipients(outbound.to, outbound.cc, outbound.bcc)
