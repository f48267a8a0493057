"""Raw RFC 5322 bytes -> `ParsedMail`, a frozen snapshot of everything the helpdesk needs.

Pure (stdlib `email` with `email.policy.default`, tnefparse, filetype): no Django, no I/O.
`parse` never raises. Whatever it cannot decode it replaces; whatever is too big, too deep or too
slow it reports in `limit_exceeded` so the caller can quarantine the raw bytes it already stored.

Header fields are read from the raw header text and decoded here rather than through the
stdlib's header objects: those decode RFC 2047 words inside addr-specs (a sender-spoofing hole),
drop raw 8-bit text and miss RFC 2047 filenames.
"""

from __future__ import annotations

import binascii
import codecs
import datetime as dt
import email.policy
import email.utils
import enum
import hashlib
import re
import time
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.feedparser import BytesFeedParser
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from io import BytesIO
from typing import NamedTuple
from urllib.parse import unquote_to_bytes

import filetype
import tnefparse

from mailboxes.sanitize import html_to_text

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


def _words(text: str) -> list[str]:
    return text.split()


def _table(text: str) -> dict[str, str]:
    """ "key=value key=value" -> dict: keeps the long lookup tables short."""
    return dict(item.split("=", 1) for item in text.split())


@dataclass(frozen=True, slots=True)
class Limits:
    max_total_bytes: int = 50 * 1024 * 1024
    max_depth: int = 20
    max_parts: int = 500
    max_header_bytes: int = 256 * 1024
    time_budget_s: float = 5.0


DEFAULT_LIMITS = Limits()


class Address(NamedTuple):
    """One mailbox of an address header: `(name, address)`; the address is never decoded from
    RFC 2047, so an encoded-word cannot forge it."""

    name: str
    address: str


class AttachmentKind(enum.StrEnum):
    REGULAR = "regular"
    INLINE = "inline"  # an image the HTML body shows through cid:
    MESSAGE = "message-rfc822"  # an attached (forwarded, bounced) message kept as .eml
    WINMAIL = "winmail-unpacked"  # a file unpacked from a winmail.dat next to it


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    payload: bytes = field(repr=False)
    size: int
    sha256: str
    content_id: str | None
    is_inline: bool
    kind: AttachmentKind


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
    _words(
        """
        auto-submitted precedence x-precedence x-autoreply x-autorespond x-auto-response-suppress
        list-id list-unsubscribe list-post return-path x-failed-recipients x-spam-flag x-spam-status
        x-spam-score x-spam-level x-loop x-ms-exchange-generated-message-source
        x-ms-exchange-inbox-rules-loop feedback-id x-mailer sender delivered-to x-original-to
        content-class
        """
    )
)

_MAX_MESSAGE_ID = 255
_MAX_IDS = 200
_MAX_ADDRESSES = 1000
_MAX_FILENAME = 180
_MAX_DEFECTS = 50
_FEED_CHUNK = 256 * 1024
# tnefparse copies the rest of its input for every object it reads: bound objects and copying.
_MAX_TNEF_OBJECTS = 10_000
_MAX_TNEF_COPY = 4_000_000_000


# --- charsets --------------------------------------------------------------------------------

# "iso-8859-1" is read as windows-1252, as browsers do: such mail nearly always is.
_ALIASES = _table(
    """
    iso-gb2312=gb18030 x-gbk=gb18030 gbk=gb18030 gb2312=gb18030 x-gb2312=gb18030 euc-cn=gb18030
    cn-gb=gb18030 ks_c_5601-1987=cp949 ks_c_5601=cp949 ks_c_5601-1989=cp949 euc-kr=cp949
    x-mac-cyrillic=mac_cyrillic x-mac-roman=mac_roman macintosh=mac_roman x-mac-ce=mac_latin2
    unicode-1-1-utf-7=utf-7 utf7=utf-7 uft-8=utf-8 utf8=utf-8 x-utf-8=utf-8 shift_jis=cp932
    shift-jis=cp932 x-sjis=cp932 sjis=cp932 windows-31j=cp932 big5=cp950 x-big5=cp950
    iso-8859-1=cp1252 latin1=cp1252 us-ascii=ascii iso-8859-8-i=iso-8859-8
    iso-8859-8-e=iso-8859-8 iso-8859-6-i=iso-8859-6 iso-8859-6-e=iso-8859-6 tis-620=cp874
    windows-874=cp874
    """
)
_UNKNOWN_CHARSETS = {"x-unknown", "unknown", "none", "unknown-8bit", "x-user-defined", "default"}
# When a label is wrong, the real charset is usually a sibling of the declared one.
_SIBLINGS = {
    "iso2022_jp": ("jis_via_cp932", "iso2022_jp_2", "iso2022_jp_2004", "cp932", "euc_jp"),
    "cp932": ("euc_jp", "shift_jis_2004"),
    "euc_jp": ("cp932",),
    "cp950": ("big5hkscs",),
    "ascii": ("utf-8",),
}
_MULTIBYTE = ("gb", "big5", "cp9", "shift_jis", "euc", "johab", "iso2022", "utf", "hz")
_NOT_TEXT = {"idna", "punycode", "unicode_escape", "raw_unicode_escape", "undefined"}


def _codec(name: str | None) -> str | None:
    """Python codec name for a declared charset, or None when unknown or unsafe."""
    if not name:
        return None
    name = name.strip().strip("\"'\\ ").lower()
    if not name or name in _UNKNOWN_CHARSETS or len(name) > 40:
        return None
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except LookupError:
        if name.startswith(("cp-", "win-")):
            return _codec("cp" + name.split("-", 1)[1])
        return None
    if info.name in _NOT_TEXT or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


_NON_ASCII = re.compile(r"[^\x00-\x7f\ufffd]")


def _few_errors(text: str, *, need_multibyte: bool = False) -> bool:
    """Mostly decodable: a damaged but real text (a name cut mid-character, a few stray bytes)
    rather than bytes of another charset. Undeclared UTF-8 must also show real multi-byte
    characters, or Latin-1 text would pass for damaged UTF-8."""
    bad = text.count("\ufffd")
    if not need_multibyte:
        return bad <= max(2, len(text) // 200)
    good = len(_NON_ASCII.findall(text))
    return good > 0 and bad <= max(2, good // 2, len(text) // 200)


def _jis_to_cp932(data: bytes) -> str:
    """ISO-2022-JP read through Shift_JIS (cp932), which has the NEC and IBM extensions
    (circled digits, "No.", etc.) that Japanese mail uses but Python's iso2022_jp lacks."""
    out = bytearray()
    double = False  # in a JIS X 0208 run ("ESC $ B"), else ASCII/Roman or half-width katakana
    kana = False
    pos = 0
    while pos < len(data):
        byte = data[pos]
        if byte == 0x1B:
            escape = data[pos + 1 : pos + 3]
            if escape not in (b"$B", b"$@", b"(B", b"(J", b"(I"):
                raise ValueError("unsupported ISO-2022 escape")
            double, kana = escape[0:1] == b"$", escape == b"(I"
            pos += 3
        elif not double or byte in (0x0A, 0x0D):
            out.append(byte | 0x80 if kana and 0x21 <= byte <= 0x5F else byte)
            pos += 1
        else:
            high, low = byte, data[pos + 1] if pos + 1 < len(data) else 0
            if not (0x21 <= high <= 0x7E and 0x21 <= low <= 0x7E):
                raise ValueError("byte outside JIS X 0208")
            lead = ((high - 0x21) >> 1) + 0x81
            lead += 0x40 if lead > 0x9F else 0
            odd_row = (high - 0x21) % 2 == 0  # rows are 1-based: index 0 is row 1
            trail = low + 0x1F + (low >= 0x60) if odd_row else low + 0x7E
            out += bytes((lead, trail))
            pos += 2
    return out.decode("cp932")


def _cp1252_fallback(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return bad.decode("cp1252", "replace"), error.end


_CP1252_FALLBACK = "helpdesk-cp1252-fallback"
codecs.register_error(_CP1252_FALLBACK, _cp1252_fallback)


def decode_bytes(data: bytes, declared: str | None = None, hints: Sequence[str] = ()) -> str:
    """Text of `data`: the declared charset (alias-mapped), its siblings, UTF-8, the hints,
    then windows-1252 and finally latin-1, so it never fails; the result is clean Unicode."""
    if not data:
        return ""
    main = _codec(declared)
    if main is None and b"\x1b$" in data:  # undeclared 7-bit ISO-2022-JP
        main = "iso2022_jp"
    candidates: list[str] = []
    if main:
        candidates += [main, *_SIBLINGS.get(main, ())]
    candidates.append("utf-8")
    # Multi-byte hints first: their strict decoding rarely succeeds by accident, windows-1252 always does.
    for hint in sorted(filter(None, map(_codec, hints)), key=lambda c: not c.startswith(_MULTIBYTE)):
        candidates += [hint, *_SIBLINGS.get(hint, ())]
    for name in dict.fromkeys(candidates):
        try:
            return clean_text(_jis_to_cp932(data) if name == "jis_via_cp932" else data.decode(name))
        except (UnicodeDecodeError, LookupError, ValueError):
            continue
    # Lossy from here on. Real UTF-8 with a few stray bytes (mixed UTF-8 and Latin-1, a name cut
    # mid-character) beats a wrong label; then the declared charset if it mostly fits.
    if _few_errors(data.decode("utf-8", "replace"), need_multibyte=True):
        return clean_text(data.decode("utf-8", _CP1252_FALLBACK))
    if main and main not in ("ascii", "cp1252") and _few_errors(text := data.decode(main, "replace")):
        return clean_text(text)
    try:
        return clean_text(data.decode("cp1252"))
    except UnicodeDecodeError:
        return clean_text(data.decode("latin-1"))


def clean_text(text: str) -> str:
    """No NUL, no lone surrogate: safe for PostgreSQL text and for UTF-8 encoding."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _decode_raw(text: str, hints: Sequence[str] = ()) -> str:
    """Header text as BytesParser left it (raw 8-bit bytes as surrogate escapes), decoded."""
    if not _has_surrogates(text) and "\x1b$" not in text:
        return clean_text(text)
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return clean_text(text)
    return decode_bytes(data, None, hints)


# --- header text -----------------------------------------------------------------------------

_FOLD = re.compile(r"\r?\n(?=[ \t])|\r(?=[ \t])")
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,64})\?([bBqQ])\?([^?]*)\?=")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_WS = re.compile(r"[ \t\r\n]+")


def _unfold(value: str) -> str:
    return _FOLD.sub("", value).replace("\r", " ").replace("\n", " ")


def _word_bytes(encoding: str, text: str) -> bytes | None:
    try:
        data = text.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return None
    try:
        if encoding in "qQ":
            return binascii.a2b_qp(data, header=True)
        data = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        return None


def decode_header_text(value: str, hints: Sequence[str] = ()) -> str:
    """RFC 2047 words (adjacent words of one charset joined before decoding, so a character
    split across words survives) and raw 8-bit text, decoded; whitespace collapsed."""
    value = _unfold(value)
    out: list[str] = []
    pending: bytearray | None = None
    pending_charset = ""
    pos = 0

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            out.append(decode_bytes(bytes(pending), pending_charset, hints))
            pending = None

    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        if pending is None or between.strip(" \t"):
            flush()
            out.append(_decode_raw(between, hints))
        pos = match.end()
        charset = match.group(1).split("*", 1)[0].lower()
        data = _word_bytes(match.group(2), match.group(3))
        if data is None:
            flush()
            out.append(_decode_raw(match.group(0), hints))
        elif pending is not None and charset == pending_charset:
            pending += data
        else:
            flush()
            pending, pending_charset = bytearray(data), charset
    flush()
    out.append(_decode_raw(value[pos:], hints))
    return _tidy("".join(out))


def _tidy(text: str) -> str:
    return _WS.sub(" ", _CONTROL.sub(" ", clean_text(text))).strip()


def _params(value: str, hints: Sequence[str] = ()) -> tuple[str, dict[str, str]]:
    """`type/sub; a=b; name*0*=utf-8''x` -> ("type/sub", {"a": "b", "name": ...}), with RFC 2231
    continuations joined and decoded, and RFC 2047 words in values decoded."""
    value = _unfold(value)
    pieces: list[str] = []
    current: list[str] = []
    quoted = False
    escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            pieces.append("".join(current))
            current = []
            continue
        current.append(char)
    pieces.append("".join(current))
    main = pieces[0].strip().lower()
    plain: dict[str, str] = {}
    extended: dict[str, dict[int, tuple[bool, str]]] = {}
    for piece in pieces[1:101]:
        key, sep, raw = piece.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            continue
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        match = re.fullmatch(r"([^*]+)\*(?:(\d{1,3})(\*)?)?", key)
        if match:
            base, index, star = match.group(1), match.group(2), match.group(3)
            encoded = star is not None or index is None
            extended.setdefault(base, {})[int(index or 0)] = (encoded, raw)
        else:
            plain.setdefault(key, raw)
    result = {key: decode_header_text(raw, hints) for key, raw in plain.items()}
    for base, segments in extended.items():
        joined = bytearray()
        charset = None
        for number in sorted(segments):
            encoded, raw = segments[number]
            if encoded:
                if number == sorted(segments)[0] and raw.count("'") >= 2:
                    charset, _lang, raw = raw.split("'", 2)
                joined += unquote_to_bytes(raw.encode("ascii", "surrogateescape"))
            else:
                joined += raw.encode("utf-8", "surrogateescape")
        text = _tidy(decode_bytes(bytes(joined), charset, hints))
        if "=?" in text:
            text = decode_header_text(text, hints)
        if text:
            result[base] = text
    return main, result


# --- addresses and ids -----------------------------------------------------------------------

_ADDR_BAD = re.compile(r"[\s<>(),;:\\\[\]]")


def _split_addresses(value: str) -> list[str]:
    entries: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    comment = angle = 0
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and (quoted or comment):
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif char == '"':
            quoted = True
        elif char == "(":
            comment += 1
        elif char == ")" and comment:
            comment -= 1
        elif comment:
            pass
        elif char == "<":
            angle += 1
        elif char == ">" and angle:
            angle -= 1
        elif not angle and char in ",;":
            entries.append("".join(current))
            current = []
            continue
        elif not angle and char == ":":
            current = []  # "group name:" starts a group; the name is not an address
            continue
        current.append(char)
    entries.append("".join(current))
    return [entry for entry in entries if entry.strip()]


def _strip_comments(text: str) -> tuple[str, str]:
    """(text without (comments), first comment)"""
    out: list[str] = []
    comments: list[str] = []
    depth = 0
    quoted = False
    for char in text:
        if char == '"' and not depth:
            quoted = not quoted
        if char == "(" and not quoted:
            depth += 1
            if depth == 1:
                comments.append("")
                continue
        elif char == ")" and depth and not quoted:
            depth -= 1
            if not depth:
                continue
        if depth:
            comments[-1] += char
        else:
            out.append(char)
    return "".join(out), (comments[0] if comments else "")


def _last_angle(text: str) -> int:
    """Index of the last "<" outside quotes, or -1."""
    found = -1
    quoted = escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "<" and not quoted:
            found = index
    return found


def _clean_address(raw: str, defects: list[str]) -> str | None:
    text = _strip_comments(raw)[0].strip().strip("<>").strip()
    quoted_local = re.match(r'("(?:[^"\\]|\\.)+")\s*@', text)
    if quoted_local:  # "john doe"@example.com keeps the spaces inside its quotes
        local, domain = quoted_local.group(1), re.sub(r"\s+", "", text[quoted_local.end() :])
        address = f"{local}@{domain}"
    else:
        address = re.sub(r"\s+", "", text)
        if address.startswith("@") and ":" in address:  # obsolete route "@a,@b:user@host"
            address = address.rsplit(":", 1)[1]
        local, at, domain = address.rpartition("@")
        if not at:  # only a bare mailbox name such as "MAILER-DAEMON" is kept without a domain
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}", address):
                return None
            local, domain = address, ""
        elif not domain:
            return None
        if not local or _ADDR_BAD.search(local):
            return None
    address = _decode_raw(address)
    if "=?" in address and "?=" in address:
        defects.append("encoded-word inside an address (kept literally)")
    if _ADDR_BAD.search(domain) or "\ufffd" in address or _CONTROL.search(address):
        return None
    return address


def _display_name(raw: str, hints: Sequence[str]) -> str:
    text = re.sub(r'"((?:[^"\\]|\\.)*)"', lambda m: re.sub(r"\\(.)", r"\1", m.group(1)), raw)
    return decode_header_text(text.replace('"', ""), hints)


def parse_addresses(
    values: Iterable[str], hints: Sequence[str] = (), defects: list[str] | None = None
) -> tuple[Address, ...]:
    """Mailboxes of address headers, tolerant of missing commas, stray brackets and groups."""
    defects = [] if defects is None else defects
    found: list[Address] = []
    for value in values:
        for entry in _split_addresses(_unfold(value)):
            if len(found) >= _MAX_ADDRESSES:
                defects.append("too many addresses; the rest ignored")
                return tuple(found)
            found += _parse_entry(entry, hints, defects)
    return tuple(found)


def _parse_entry(entry: str, hints: Sequence[str], defects: list[str]) -> list[Address]:
    text, comment = _strip_comments(entry)
    text = text.strip()
    start = _last_angle(text)
    if start >= 0:
        end = text.find(">", start)
        inner = text[start + 1 : end if end >= 0 else len(text)]
        tokens = inner.split()
        # "jdoe@machine.  example" (obsolete folding) is one address split around "." or "@"
        dotted = any(t.endswith((".", "@")) or t.startswith((".", "@")) for t in tokens)
        if len(tokens) > 1 and not dotted and not inner.lstrip().startswith('"'):
            # "<name user@host>": keep the token that looks like an address
            inner = next((t for t in reversed(tokens) if "@" in t), tokens[-1])
        name = text[:start] if text[:start].strip() else comment
        address = _clean_address(inner, defects)
    elif text.startswith('"') and re.search(r'"\s*@', text):  # "quoted local part"@domain
        name, address = comment, _clean_address(text, defects)
    else:
        tokens = text.split()
        if not tokens:
            return []
        with_at = [index for index, token in enumerate(tokens) if "@" in token]
        if len(tokens) > 1 and len(with_at) == len(tokens):  # addresses without commas
            cleaned = (_clean_address(token, defects) for token in tokens)
            return [Address("", address) for address in cleaned if address]
        pick = with_at[-1] if with_at else len(tokens) - 1
        name = " ".join(tokens[:pick] + tokens[pick + 1 :]) or comment
        address = _clean_address(tokens[pick], defects)
    if address is None:
        defects.append("unusable address dropped")
        return []
    return [Address(_display_name(name, hints), address)]


_ID_TOKEN = re.compile(r"<([^<>]*)>|([^\s<>,;]+)")


def _normalise_id(inner: str) -> str | None:
    inner = re.sub(r"\s+", "", inner)
    if not inner:
        return None
    inner = _tidy(_decode_raw(inner)).replace(" ", "")
    ident = f"<{inner}>"
    if len(ident) > _MAX_MESSAGE_ID:
        # Too long to store: a stable stand-in, applied the same way to References.
        ident = f"<{hashlib.sha256(inner.encode()).hexdigest()[:40]}@long-id.invalid>"
    return ident


def parse_message_ids(values: Iterable[str]) -> tuple[str, ...]:
    """`<id>` strings from Message-ID / In-Reply-To / References values: several per header,
    commas or no brackets tolerated, bracket-less words only when they contain "@"; duplicates
    removed, order kept."""
    found: dict[str, None] = {}
    for value in values:
        text = _strip_comments(_unfold(value))[0] if "(" in value else _unfold(value)
        for match in _ID_TOKEN.finditer(text):
            inner = match.group(1)
            if inner is None:
                inner = match.group(2)
                if "@" not in inner:
                    continue
            ident = _normalise_id(inner)
            if ident:
                found.setdefault(ident)
            if len(found) >= _MAX_IDS:
                return tuple(found)
    return tuple(found)


_DATE_PREFIX = re.compile(
    r"(?:[A-Za-z]{3},?\s*)?\d{1,2}\s+[A-Za-z]{3,9}\s+\d{2,4}\s+\d{1,2}:\d{2}(?::\d{2})?"
    r"(?:\s*(?:[+-]\d{4}|[A-Za-z]{1,5}(?![A-Za-z])))?"
)


def _parse_date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    text = _tidy(_strip_comments(_decode_raw(_unfold(value)))[0])
    text = re.sub(r"\s*:\s*", ":", text)  # obsolete syntax allows "09 : 55 : 06"
    prefix = _DATE_PREFIX.search(text)
    for candidate in (prefix.group(0), text) if prefix else (text,):
        try:
            parsed = email.utils.parsedate_to_datetime(candidate)
        except (TypeError, ValueError, IndexError, OverflowError):
            continue
        if parsed is None:
            continue
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed
    return None


# --- filenames and types ---------------------------------------------------------------------

_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|]')
_RESERVED_NAMES = re.compile(r"(con|prn|aux|nul|com\d|lpt\d)(\..*)?", re.I)
_GENERIC_TYPES = set(
    _words(
        """
    application/octet-stream application/unknown application/x-unknown application/binary
    application/download application/force-download application/x-download binary/octet-stream
    application/x-octet-stream application/x-msdownload application/applefile
    """
    )
)
_ZIP_FAMILY = ("openxmlformats", "opendocument", "zip", "java-archive", "epub", "vnd.ms-", "apk")
_TYPE_FIXES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}
_EXTENSIONS = _table(
    """
    text/plain=txt text/html=html text/calendar=ics text/csv=csv text/rfc822-headers=txt
    text/enriched=txt text/richtext=txt text/xml=xml message/rfc822=eml message/global=eml
    application/pdf=pdf application/pgp-signature=asc application/pgp-encrypted=asc
    application/pkcs7-signature=p7s application/x-pkcs7-signature=p7s application/pkcs7-mime=p7m
    application/x-pkcs7-mime=p7m application/ms-tnef=dat application/vnd.ms-tnef=dat
    application/msword=doc application/vnd.ms-excel=xls application/json=json application/xml=xml
    application/postscript=ps image/jpeg=jpg image/png=png image/gif=gif video/quicktime=mov
    video/mp4=mp4 audio/mpeg=mp3 audio/basic=au
    """
)
_BY_EXTENSION = _table(
    """
    txt=text/plain csv=text/csv ics=text/calendar eml=message/rfc822 htm=text/html
    html=text/html doc=application/msword xls=application/vnd.ms-excel
    ppt=application/vnd.ms-powerpoint msg=application/vnd.ms-outlook
    asc=application/pgp-signature p7s=application/pkcs7-signature p7m=application/pkcs7-mime
    json=application/json xml=application/xml
    """
)


def safe_filename(name: str) -> str:
    """A file name that is only a name: no directories, no "..", no scheme, no controls."""
    name = unicodedata.normalize("NFC", clean_text(name))
    name = "".join(
        " " if c in "\r\n\t" else c
        for c in name
        if c in "\r\n\t" or unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )
    parts = [p.strip() for p in re.split(r"[\\/]+", name)]
    name = "_".join(p for p in parts if p and p.strip(". ") != "")
    name = _UNSAFE_NAME.sub("_", name)
    name = re.sub(r"\.{2,}", ".", name)
    name = re.sub(r"\s+", " ", name).strip(" .")
    if _RESERVED_NAMES.fullmatch(name):
        name = "_" + name
    if len(name) > _MAX_FILENAME or len(name.encode()) > 255:
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and 0 < len(ext) <= 16 else ""
        room = _MAX_FILENAME - len(ext) - 1
        stem = (stem if ext else name)[:room]
        while len(stem.encode()) + len(ext) > 250:
            stem = stem[:-1]
        name = f"{stem.rstrip(' .')}.{ext}" if ext else stem.rstrip(" .")
    return name


def _sniff(payload: bytes) -> tuple[str | None, str | None]:
    try:
        kind = filetype.guess(payload[:8192])
    except Exception:  # filetype's matchers are third-party code: never let them break parsing
        return None, None
    return (kind.mime, kind.extension) if kind else (None, None)


def _final_type(declared: str, payload: bytes, filename: str) -> str:
    declared = _TYPE_FIXES.get(declared, declared)
    sniffed, _ext = _sniff(payload)
    if declared in _GENERIC_TYPES:
        if sniffed:
            return sniffed
        ext = filename.rpartition(".")[2].lower() if "." in filename else ""
        return _BY_EXTENSION.get(ext, declared)
    if not sniffed or sniffed == declared:
        return declared
    if sniffed == "application/zip" and any(k in declared for k in _ZIP_FAMILY):
        return declared
    if declared.startswith("text/") and sniffed.startswith("application/"):
        return sniffed  # e.g. a PDF or ZIP that calls itself text: believe the bytes
    if declared.split("/")[0] in ("image", "audio", "video") or sniffed.split("/")[0] in (
        "image",
        "audio",
        "video",
    ):
        return sniffed
    if sniffed in ("application/x-msdownload", "application/x-executable", "application/x-elf"):
        return sniffed
    return declared


# --- the MIME walk ---------------------------------------------------------------------------


class _LimitHit(Exception):
    pass


class _Guard:
    """Message factory for the feed parser: counts parts, watches depth and the clock, so a
    hostile structure stops early instead of exhausting time or the stack."""

    def __init__(self, limits: Limits, deadline: float) -> None:
        self.limits = limits
        self.deadline = deadline
        self.parser: BytesFeedParser | None = None
        self.parts = 0
        self.root: EmailMessage | None = None

    def __call__(self, policy=email.policy.default) -> EmailMessage:
        message = EmailMessage(policy=policy)
        if self.parser is None:  # the probe call BytesFeedParser makes in __init__
            return message
        self.parts += 1
        if self.root is None:
            self.root = message
        if self.parts > self.limits.max_parts:
            raise _LimitHit(f"more than {self.limits.max_parts} MIME parts")
        if len(getattr(self.parser, "_msgstack", ())) > self.limits.max_depth:
            raise _LimitHit(f"MIME parts nested deeper than {self.limits.max_depth} levels")
        self.check_clock()
        return message

    def check_clock(self) -> None:
        if time.monotonic() > self.deadline:
            raise _LimitHit(f"parsing took longer than {self.limits.time_budget_s:g} s")


@dataclass(slots=True)
class _Leaf:
    filename: str | None
    content_type: str
    payload: bytes
    content_id: str | None
    kind: AttachmentKind


@dataclass(slots=True)
class _Walk:
    hints: list[str]
    linesep: str
    deadline: float
    limits: Limits
    defects: list[str]
    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    leaves: list[_Leaf] = field(default_factory=list)


def _header_map(part: Message) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in part.raw_items():
        found.setdefault(name.strip().lower(), []).append(str(value))
    return found


def _first(headers: Mapping[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:  # a header the stdlib parser chokes on: fall back to the default type
        return part.get_default_type()


_GEN_POLICY = email.policy.default.clone(refold_source="none", max_line_length=None)


def _message_bytes(part: Message, linesep: str) -> bytes:
    """The content of a message/* part, written back with its original header lines."""
    for inner in part.walk():
        payload = inner.get_payload() if not inner.is_multipart() else None
        if (
            isinstance(payload, str)
            and len(payload) > _FOLD_MIN
            and "\n" not in payload[:1000]
            and str(inner.get("content-transfer-encoding", "")).strip().lower() == "base64"
        ):
            # A base64 body _body_chunks folded: back to 76-character lines for the .eml file.
            flat = payload.replace("\r", "").replace("\n", "")
            inner.set_payload(linesep.join(flat[i : i + 76] for i in range(0, len(flat), 76)))
    buffer = BytesIO()
    BytesGenerator(buffer, mangle_from_=False, policy=_GEN_POLICY).flatten(part, linesep=linesep)
    data = buffer.getvalue()
    sep = linesep.encode()
    if data.startswith(sep):
        return data[len(sep) :]
    cut = data.find(sep + sep)
    return data[cut + 2 * len(sep) :] if cut >= 0 else b""


def _uudecode(data: bytes) -> bytes | None:
    lines = data.splitlines()
    begin = next((i for i, line in enumerate(lines) if line.startswith(b"begin ")), None)
    out: list[bytes] = []
    for line in lines[(begin + 1) if begin is not None else 0 :]:
        if line.strip() in (b"end", b"`", b""):
            if out or line.strip() == b"end":
                break
            continue
        try:
            out.append(binascii.a2b_uu(line))
        except binascii.Error:
            try:
                out.append(binascii.a2b_uu(line[: (((line[0] - 32) & 63) * 4 + 5) // 3]))
            except (binascii.Error, IndexError):
                return None
    return b"".join(out)


def _payload(part: Message) -> bytes:
    """Transfer-decoded bytes, equal to `get_payload(decode=True)`; base64 is decoded in one step
    because the stdlib path keeps several copies of a large attachment alive at once."""
    cte = str(part.get("content-transfer-encoding", "")).lower()
    if cte == "base64":
        text = part.get_payload()
        if isinstance(text, str) and text.isascii():
            try:
                return binascii.a2b_base64(text)  # takes ASCII str as is: no 35 MB bytes copy
            except binascii.Error:
                pass
    if cte in ("x-uuencode", "uuencode", "uue", "x-uue"):
        text = part.get_payload()
        if isinstance(text, str):
            decoded = _uudecode(text.encode("ascii", "surrogateescape"))
            if decoded is not None:
                return decoded
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_:.-]{1,40})""", re.I)


def _body_text(payload: bytes, charset: str | None, html: bool, hints: Sequence[str]) -> str:
    if html and not _codec(charset):
        meta = _META_CHARSET.search(payload[:4096])
        charset = meta.group(1).decode() if meta else charset
    text = decode_bytes(payload, charset, hints)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _walk(root: Message, walk: _Walk) -> None:
    stack: list[Message] = [root]
    while stack:
        if time.monotonic() > walk.deadline:
            raise _LimitHit(f"parsing took longer than {walk.limits.time_budget_s:g} s")
        part = stack.pop()
        for defect in getattr(part, "defects", ()):
            walk.defects.append(_defect_words(defect))
        headers = _header_map(part)
        ctype = _content_type(part)
        if part.is_multipart() and not ctype.startswith("message/"):
            stack.extend(reversed(part.get_payload()))
            continue
        _leaf(part, headers, ctype, walk)


def _leaf(part: Message, headers: Mapping[str, list[str]], ctype: str, walk: _Walk) -> None:
    hints = walk.hints
    _main, ct_params = _params(_first(headers, "content-type") or "", hints)
    disposition, cd_params = _params(_first(headers, "content-disposition") or "", hints)
    filename = cd_params.get("filename") or ct_params.get("name")
    content_id = _first(headers, "content-id")
    content_id = (_tidy(_decode_raw(content_id)).strip("<> ") or None) if content_id else None
    if ctype.startswith("message/") and part.is_multipart():
        payload = _message_bytes(part, walk.linesep)
        described = decode_header_text(_first(headers, "content-description") or "", hints)
        if ctype in ("message/rfc822", "message/global"):
            if not filename:
                inner = part.get_payload(0)
                subject = _first(_header_map(inner), "subject") if isinstance(inner, Message) else None
                subject = decode_header_text(subject, hints) if subject else ""
                filename = f"{subject or described or 'message'}.eml"
            walk.leaves.append(_Leaf(filename, ctype, payload, content_id, AttachmentKind.MESSAGE))
        else:
            filename = filename or f"{described or ctype.split('/')[1]}.txt"
            walk.leaves.append(_Leaf(filename, ctype, payload, content_id, AttachmentKind.REGULAR))
        part.set_payload(None)
        return
    payload = _payload(part)
    part.set_payload("")  # the encoded text is no longer needed: free it before the next part
    is_body_type = ctype in ("text/plain", "text/html") or ctype.startswith("multipart/")
    if is_body_type and disposition != "attachment" and not filename:
        charset = ct_params.get("charset")
        text = _body_text(payload, charset, ctype == "text/html", hints)
        (walk.htmls if ctype == "text/html" else walk.texts).append(text)
        return
    if not filename:
        filename = _name_from_location(_first(headers, "content-location"), content_id)
    walk.leaves.append(_Leaf(filename, ctype, payload, content_id, AttachmentKind.REGULAR))


_NAME_LIKE = re.compile(r"[\w ()+,.-]{1,100}\.[A-Za-z0-9]{1,5}")


def _name_from_location(location: str | None, content_id: str | None) -> str | None:
    """A name Outlook put elsewhere: Content-Location's last segment or "image001.png@01D..."."""
    for candidate in (
        (location or "").strip().rsplit("/", 1)[-1].rsplit("\\", 1)[-1],
        (content_id or "").rsplit("@", 1)[0] if "@" in (content_id or "") else "",
    ):
        candidate = _tidy(_decode_raw(candidate))
        if _NAME_LIKE.fullmatch(candidate):
            return candidate
    return None


def _defect_words(defect: object) -> str:
    name = type(defect).__name__.removesuffix("Defect")
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
    detail = str(defect)
    return f"{words}: {detail}"[:200] if detail and detail != name else words


def _generated_name(ctype: str, payload: bytes, index: int) -> str:
    if ctype == "text/calendar":
        return f"invite-{index}.ics"
    subtype = ctype.split("/")[-1]
    ext = _EXTENSIONS.get(ctype) or _sniff(payload)[1] or (subtype if subtype.isalnum() else "")
    ext = ext[:5].lower() if ext and ext.isalnum() else "bin"
    major = ctype.split("/")[0]
    stem = major if major in ("image", "audio", "video") else "attachment"
    return f"{stem}-{index}.{ext}"


def _unpack_tnef(data: bytes, defects: list[str]) -> tuple[list[_Leaf], str | None, str | None]:
    """Files, text body and HTML body from a winmail.dat; nothing (and a defect) when broken."""
    objects = 0
    offset = 6
    while offset + 12 < len(data) and objects <= _MAX_TNEF_OBJECTS:
        objects += 1
        offset += min(len(data) - offset, int.from_bytes(data[offset + 5 : offset + 9], "little") + 11)
    if objects > _MAX_TNEF_OBJECTS or objects * len(data) > _MAX_TNEF_COPY:
        defects.append("winmail.dat too large to unpack; kept as it is")
        return [], None, None
    try:
        tnef = tnefparse.TNEF(data, do_checksum=False)
        leaves = []
        for item in tnef.attachments:
            payload = item.data if isinstance(item.data, bytes) else b""
            name = item.long_filename()
            name = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name or "")
            sniffed = _sniff(payload)[0] or "application/octet-stream"
            leaves.append(_Leaf(name or None, sniffed, payload, None, AttachmentKind.WINMAIL))
        body = tnef.body
        html = tnef.htmlbody
    except Exception as exc:  # tnefparse raises whatever broken input makes it raise
        defects.append(f"winmail.dat could not be unpacked ({type(exc).__name__}); kept as it is")
        return [], None, None

    def as_text(value: object) -> str | None:
        if isinstance(value, bytes):
            return decode_bytes(value.rstrip(b"\x00"))
        return clean_text(value) if isinstance(value, str) and value.strip() else None

    return leaves, as_text(body), as_text(html)


_CID_REF = re.compile(r"""cid:([^"'\s>)]+)""", re.I)


def _referenced_cids(html: str | None) -> set[str]:
    if not html:
        return set()
    return {
        unquote_to_bytes(m.group(1)).decode("utf-8", "replace").strip("<>").casefold()
        for m in _CID_REF.finditer(html)
    }


def _attachments(leaves: list[_Leaf], html: str | None) -> tuple[Attachment, ...]:
    cids = _referenced_cids(html)
    result = []
    for index, leaf in enumerate(leaves, start=1):
        ctype = leaf.content_type
        name = safe_filename(leaf.filename) if leaf.filename else ""
        if leaf.kind is not AttachmentKind.MESSAGE and not ctype.startswith("message/"):
            ctype = _final_type(ctype, leaf.payload, name)
        if not name:
            name = _generated_name(ctype, leaf.payload, index)
        inline = bool(leaf.content_id) and leaf.content_id.casefold() in cids
        kind = leaf.kind
        if inline and kind is AttachmentKind.REGULAR:
            kind = AttachmentKind.INLINE
        result.append(
            Attachment(
                filename=name,
                content_type=ctype,
                payload=leaf.payload,
                size=len(leaf.payload),
                sha256=hashlib.sha256(leaf.payload).hexdigest(),
                content_id=leaf.content_id,
                is_inline=inline,
                kind=kind,
            )
        )
    return tuple(result)


# --- raw bytes ---------------------------------------------------------------------------------

_LINE = re.compile(rb"([^\r\n]*)(\r\n|\n|\r)")
_FIELD = re.compile(rb"[!-9;-~]+:")
_OBS_FIELD = re.compile(rb"([!-9;-~]+)[ \t]+:")


def _start_offset(raw: bytes) -> int:
    """Skip a BOM, leading blank lines and an mbox "From " line."""
    pos = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    seen_text = False
    while (match := _LINE.match(raw, pos)) and pos < 4096:
        line = match.group(1)
        envelope = line.startswith((b"From ", b">From ")) and not _OBS_FIELD.match(line)
        if line.strip() and not (envelope and not seen_text):
            break
        seen_text = seen_text or bool(line.strip())
        pos = match.end()
    return pos


def _header_block(raw: bytes, start: int, limit: int) -> tuple[int, int, bool]:
    """(end of the headers, start of the body, too big) scanning at most `limit` bytes.

    Without a blank line in reach, the first line that cannot be a header line ends the block
    (the separator is missing); without such a line either, the block is too big."""
    pos = start
    stop = min(len(raw), start + limit)
    stray = None
    while pos < stop:
        match = _LINE.match(raw, pos)
        if not match:
            return len(raw), len(raw), False
        line = match.group(1)
        if not line:
            return pos, match.end(), False
        if stray is None and pos > start and not (_FIELD.match(line) or _OBS_FIELD.match(line)):
            stray = None if line[:1] in b" \t" else pos
        pos = match.end()
    if stop == len(raw):
        return len(raw), len(raw), False
    return (stray, stray, False) if stray is not None else (pos, pos, True)


def _repair_headers(block: bytes, defects: list[str]) -> bytes:
    """Header lines the stdlib would stop at become harmless: obsolete "Name :" is joined, a
    garbage first line is dropped, and a stray line inside the block becomes a continuation of
    the line before it, so it can neither end the headers early nor add a field."""
    lines = block.splitlines()
    valid = [bool(_FIELD.match(line) or _OBS_FIELD.match(line)) for line in lines]
    last_field = max((i for i, ok in enumerate(valid) if ok), default=-1)
    out: list[bytes] = []
    for index, line in enumerate(lines):
        if _OBS_FIELD.match(line) and not _FIELD.match(line):
            defects.append('obsolete "Name :" header syntax read as "Name:"')
            line = _OBS_FIELD.sub(rb"\1:", line, count=1)
        elif not valid[index] and line[:1] not in (b" ", b"\t"):
            # After the last field, a stray line is the body's first line (the separator is
            # missing), unless the header above it is visibly unfinished ("<d@" then "example.com>").
            unfinished = out and (
                out[-1].count(b"<") > out[-1].count(b">") or out[-1].rstrip().endswith((b",", b"@"))
            )
            if index >= last_field and not unfinished:
                out.append(b"")  # the body starts here: the separator line was missing
                out.extend(lines[index:])
                defects.append("blank line between headers and body missing")
                return b"\n".join(out)
            if not out:
                defects.append("garbage line before the headers dropped")
                continue
            defects.append("header line without a name joined to the previous header")
            line = b" " + line
        out.append(line)
    return b"\n".join(out)


_BLANK_LINE = re.compile(rb"\n\r?\n")
_BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/=\r\n]*")
_BASE64_CTE = re.compile(rb"content-transfer-encoding:[ \t]*base64[ \t]*", re.I)
_FOLD_MIN = 256 * 1024


def _body_chunks(raw: bytes, start: int) -> Iterator[bytes]:
    """The body in feed-sized chunks, large base64 bodies folded into a few long lines.

    The stdlib feed parser costs about 10 µs a line, most of the time budget for a 25 MB
    attachment's 450,000 lines. Base64 ignores line breaks, so the decoded bytes are the same.
    """
    view = memoryview(raw)
    pos = start
    search = start
    while blank := _BLANK_LINE.search(raw, search):
        body = blank.end()
        run = _BASE64_TEXT.match(raw, body)
        end = raw.rfind(b"\n", body, run.end()) + 1
        if end - body < _FOLD_MIN or not _declares_base64(raw, body):
            search = max(body, end) if end > body else body
            continue
        for offset in range(pos, body, _FEED_CHUNK):
            yield bytes(view[offset : min(offset + _FEED_CHUNK, body)])
        for offset in range(body, end, _FEED_CHUNK * 4):
            yield bytes(view[offset : min(offset + _FEED_CHUNK * 4, end)]).translate(None, b"\r\n") + b"\n"
        pos = search = end
    for offset in range(pos, len(raw), _FEED_CHUNK):
        yield bytes(view[offset : offset + _FEED_CHUNK])


def _declares_base64(raw: bytes, body: int) -> bool:
    """Whether the header block that ends in a blank line just before `body` says base64."""
    if raw[body - 2 : body] == b"\n\n":
        end = body - 1
    elif raw[body - 4 : body] == b"\r\n\r\n":
        end = body - 2
    else:
        return False
    for _ in range(100):  # walk back over the part's header lines only
        line_start = raw.rfind(b"\n", 0, end - 1) + 1
        line = raw[line_start:end].rstrip(b"\r\n")
        if not line or line.startswith(b"--") or not (_FIELD.match(line) or line[:1] in b" \t"):
            return False
        if _BASE64_CTE.match(line):
            return True
        if line_start == 0:
            return False
        end = line_start
    return False


def _surrogate_id(raw: memoryview) -> str:
    """Same id for the same message whatever its line endings, so re-import is idempotent."""
    digest = hashlib.sha256()
    carry = b""
    for offset in range(0, len(raw), 1 << 20):
        chunk = carry + bytes(raw[offset : offset + (1 << 20)])
        carry = b"\r" if chunk.endswith(b"\r") else b""
        if carry:
            chunk = chunk[:-1]
        digest.update(chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
    digest.update(carry.replace(b"\r", b"\n"))
    return f"<{digest.hexdigest()[:32]}@surrogate.invalid>"


# --- parse -----------------------------------------------------------------------------------


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
        message_id=_surrogate_id(memoryview(raw)),
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
    view = memoryview(raw)
    start = _start_offset(raw)
    header_end, body_start, too_big = _header_block(raw, start, limits.max_header_bytes)
    limit: str | None = None
    if too_big:
        limit = f"the header block is larger than {limits.max_header_bytes // 1024} KB"
    elif len(raw) > limits.max_total_bytes:
        limit = f"the message is larger than {limits.max_total_bytes // (1024 * 1024)} MB"
    block = _repair_headers(bytes(view[start:header_end]), defects)
    first_line = _LINE.match(raw, start)
    linesep = "\r\n" if first_line and first_line.group(2) == b"\r\n" else "\n"

    guard = _Guard(limits, deadline)
    parser = BytesFeedParser(_factory=guard, policy=email.policy.default)
    guard.parser = parser
    message: EmailMessage | None = None
    try:
        parser.feed(block + b"\n\n")
        if limit is None:
            for chunk in _body_chunks(raw, body_start):
                parser.feed(chunk)
                guard.check_clock()
        message = parser.close()
    except _LimitHit as hit:
        limit = str(hit)
    except RecursionError:
        limit = "the MIME structure is too deeply nested"
    if message is None:
        message = guard.root or EmailMessage()
    headers = _header_map(message)
    hints = _charset_hints(message, headers)
    walk = _Walk(hints=hints, linesep=linesep, deadline=deadline, limits=limits, defects=defects)
    text = html = None
    attachments: tuple[Attachment, ...] = ()
    if limit is None:
        try:
            _walk(message, walk)
            text, html, attachments = _bodies_and_attachments(walk)
        except _LimitHit as hit:
            limit = str(hit)
        except RecursionError:
            limit = "the MIME structure is too deeply nested"
    if limit:
        defects.append(f"limit: {limit}")
        text, html, attachments = "", None, ()
    return _assemble(raw, view, start, message, headers, hints, text or "", html, attachments, defects, limit)


def _charset_hints(message: Message, headers: Mapping[str, list[str]]) -> list[str]:
    """Charsets the message declares somewhere: the best guess for raw 8-bit header bytes."""
    hints: list[str] = []
    for part in message.walk() if message.is_multipart() else [message]:
        value = (
            _first(_header_map(part), "content-type")
            if part is not message
            else _first(headers, "content-type")
        )
        match = re.search(r"charset\s*=\s*\"?([A-Za-z0-9_:.-]+)", value or "", re.I)
        if match and _codec(match.group(1)) not in (None, "ascii", "utf-8") and match.group(1) not in hints:
            hints.append(match.group(1))
        if len(hints) >= 3:
            break
    return hints


def _bodies_and_attachments(walk: _Walk) -> tuple[str, str | None, tuple[Attachment, ...]]:
    leaves = walk.leaves
    texts, htmls = walk.texts, walk.htmls
    for leaf in list(leaves):
        if leaf.content_type in ("application/ms-tnef", "application/vnd.ms-tnef") or (
            (leaf.filename or "").lower() == "winmail.dat"
        ):
            _check(walk)
            files, tnef_text, tnef_html = _unpack_tnef(leaf.payload, walk.defects)
            leaves.extend(files)
            if not any(t.strip() for t in texts) and tnef_text:
                texts.append(tnef_text)
            if not htmls and tnef_html:
                htmls.append(tnef_html)
    html = "\n".join(htmls) if htmls else None
    text = "\n".join(t.strip("\n") for t in texts if t is not None)
    if not text.strip() and html:
        _check(walk)
        text = html_to_text(html)
    return clean_text(text), clean_text(html) if html is not None else None, _attachments(leaves, html)


def _check(walk: _Walk) -> bool:
    if time.monotonic() > walk.deadline:
        raise _LimitHit(f"parsing took longer than {walk.limits.time_budget_s:g} s")
    return True


def _assemble(
    raw: bytes,
    view: memoryview,
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
    message_id = ids[0] if ids else _surrogate_id(view[start:])
    try:
        ctype = message.get_content_type()
        report_type = message.get_param("report-type") if ctype == "multipart/report" else None
    except Exception:
        ctype, report_type = "text/plain", None
    classify = {}
    for name in CLASSIFY_HEADERS:
        value = _first(headers, name)
        if value is not None:
            classify[name] = _tidy(_decode_raw(_unfold(value), hints))[:2000]
    return ParsedMail(
        subject=decode_header_text(_first(headers, "subject") or "", hints)[:2000],
        from_addr=from_addrs[0] if from_addrs else None,
        reply_to=reply_to,
        to=parse_addresses(get("to", []), hints, defects),
        cc=parse_addresses(get("cc", []), hints, defects),
        message_id=message_id,
        message_id_is_surrogate=not ids,
        in_reply_to=parse_message_ids(get("in-reply-to", [])),
        references=parse_message_ids(get("references", [])),
        date=_parse_date(_first(headers, "date")),
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
