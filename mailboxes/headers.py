"""Header field values, read from the raw header text: unfolding, RFC 2047 encoded words, RFC 2231
parameters, comments, message ids and dates.

The stdlib's header objects are not used: they decode RFC 2047 words inside addr-specs (a
sender-spoofing hole), drop raw 8-bit text and miss RFC 2047 filenames.
"""

from __future__ import annotations

import binascii
import datetime as dt
import email.utils
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from email.message import Message
from urllib.parse import unquote_to_bytes

from mailboxes.charsets import clean_text, codec_name, decode_bytes, decode_raw

__all__ = [
    "CONTROL",
    "charset_hints",
    "content_params",
    "decode_header_text",
    "first",
    "header_map",
    "parse_date",
    "parse_message_ids",
    "strip_comments",
    "surrogate_id",
    "tidy",
    "unfold",
]

_MAX_MESSAGE_ID = 255
_MAX_IDS = 200

_FOLD = re.compile(r"\r?\n(?=[ \t])|\r(?=[ \t])")
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,64})\?([bBqQ])\?([^?]*)\?=")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_WS = re.compile(r"[ \t\r\n]+")


def header_map(part: Message) -> dict[str, list[str]]:
    """Lower-case field name -> raw values, in order, of one message or part."""
    found: dict[str, list[str]] = {}
    for name, value in part.raw_items():
        found.setdefault(name.strip().lower(), []).append(str(value))
    return found


def first(headers: Mapping[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def _first_field(part: Message, name: str) -> str | None:
    """`first(header_map(part), name)` without building the whole map."""
    for key, value in part.raw_items():
        if key.strip().lower() == name:
            return str(value)
    return None


_CHARSET_PARAM = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9_:.-]+)", re.I)


def charset_hints(message: Message, headers: Mapping[str, list[str]]) -> list[str]:
    """Charsets the message declares somewhere: the best guess for raw 8-bit header bytes."""
    hints: list[str] = []
    for part in message.walk() if message.is_multipart() else [message]:
        value = first(headers, "content-type") if part is message else _first_field(part, "content-type")
        match = _CHARSET_PARAM.search(value or "")
        charset = match.group(1) if match else None
        if charset and codec_name(charset) not in (None, "ascii", "utf-8") and charset not in hints:
            hints.append(charset)
        if len(hints) >= 3:
            break
    return hints


# --- header text -----------------------------------------------------------------------------


def unfold(value: str) -> str:
    if "\n" not in value and "\r" not in value:  # most values: skip the regex
        return value
    return _FOLD.sub("", value).replace("\r", " ").replace("\n", " ")


def tidy(text: str) -> str:
    text = clean_text(text)
    if text.isprintable() and "  " not in text:  # no control character, tab, line break or double space
        return text.strip()
    return _WS.sub(" ", CONTROL.sub(" ", text)).strip()


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
    value = unfold(value)
    if "=?" not in value:  # no encoded word: most subjects and display names
        return tidy(decode_raw(value, hints))
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
            out.append(decode_raw(between, hints))
        pos = match.end()
        charset = match.group(1).split("*", 1)[0].lower()
        data = _word_bytes(match.group(2), match.group(3))
        if data is None:
            flush()
            out.append(decode_raw(match.group(0), hints))
        elif pending is not None and charset == pending_charset:
            pending += data
        else:
            flush()
            pending, pending_charset = bytearray(data), charset
    flush()
    out.append(decode_raw(value[pos:], hints))
    return tidy("".join(out))


def split_outside_quotes(value: str, separator: str) -> list[str]:
    """Split at `separator` where it is not inside a quoted string (backslash escapes respected)."""
    if '"' not in value:  # no quoted string: backslashes escape nothing either
        return value.split(separator)
    pieces: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            pieces.append("".join(current))
            current = []
            continue
        current.append(char)
    pieces.append("".join(current))
    return pieces


def content_params(value: str, hints: Sequence[str] = ()) -> tuple[str, dict[str, str]]:
    """`type/sub; a=b; name*0*=utf-8''x` -> ("type/sub", {"a": "b", "name": ...}), with RFC 2231
    continuations joined and decoded, and RFC 2047 words in values decoded."""
    pieces = split_outside_quotes(unfold(value), ";")
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
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1]) if "\\" in raw else raw[1:-1]
        match = re.fullmatch(r"([^*]+)\*(?:(\d{1,3})(\*)?)?", key) if "*" in key else None
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
        text = tidy(decode_bytes(bytes(joined), charset, hints))
        if "=?" in text:
            text = decode_header_text(text, hints)
        if text:
            result[base] = text
    return main, result


def strip_comments(text: str) -> tuple[str, str]:
    """(text without (comments), first comment)"""
    if "(" not in text:  # nothing to strip: skip the walk over every character
        return text, ""
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


# --- message ids -----------------------------------------------------------------------------

_ID_TOKEN = re.compile(r"<([^<>]*)>|([^\s<>,;]+)")


def _normalise_id(inner: str) -> str | None:
    inner = re.sub(r"\s+", "", inner)
    if not inner:
        return None
    inner = tidy(decode_raw(inner)).replace(" ", "")
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
        text = strip_comments(unfold(value))[0] if "(" in value else unfold(value)
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


def surrogate_id(raw: memoryview) -> str:
    """The Message-ID of a message without one. Same id for the same message whatever its line
    endings, so re-import is idempotent."""
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


# --- dates -----------------------------------------------------------------------------------

_DATE_PREFIX = re.compile(
    r"(?:[A-Za-z]{3},?\s*)?\d{1,2}\s+[A-Za-z]{3,9}\s+\d{2,4}\s+\d{1,2}:\d{2}(?::\d{2})?"
    r"(?:\s*(?:[+-]\d{4}|[A-Za-z]{1,5}(?![A-Za-z])))?"
)


def parse_date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    text = tidy(strip_comments(decode_raw(unfold(value)))[0])
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
