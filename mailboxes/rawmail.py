"""Raw RFC 5322 bytes -> the stdlib's message tree, within `Limits` on size, depth, parts and time.

Before the stdlib feed parser sees the bytes, the header block is found and repaired here (a
BOM, an mbox "From " line, obsolete or stray header lines, a missing blank line would otherwise
end or corrupt it), and large base64 bodies are set aside behind a one-line stand-in (`SetAside`). A
limit hit stops the parser early with `LimitHit` instead of exhausting time or the stack.
"""

from __future__ import annotations

import binascii
import email.policy
import re
import secrets
import string
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.feedparser import BytesFeedParser
from email.message import Message

__all__ = [
    "DEFAULT_LIMITS",
    "FOLD_MIN",
    "LimitHit",
    "Limits",
    "SetAside",
    "check_clock",
    "read_message",
    "within_limits",
]


@dataclass(frozen=True, slots=True)
class Limits:
    max_total_bytes: int = 50 * 1024 * 1024
    max_depth: int = 20
    max_parts: int = 500
    max_header_bytes: int = 256 * 1024
    time_budget_s: float = 5.0


DEFAULT_LIMITS = Limits()
# compat32: the tree keeps raw header strings, which is all the helpdesk reads (it decodes them itself, see
# `headers`); `email.policy.default` would build a header object on every access, a third of the parse time.
PARSE_POLICY = email.policy.compat32

_FEED_CHUNK = 256 * 1024
FOLD_MIN = 8 * 1024  # base64 bodies at least this long are set aside, and restored folded into long lines


class LimitHit(Exception):
    pass


def check_clock(deadline: float, limits: Limits) -> None:
    if time.monotonic() > deadline:
        raise LimitHit(f"parsing took longer than {limits.time_budget_s:g} s")


def within_limits[T](step: Callable[[], T]) -> tuple[T | None, str | None]:
    """(what `step` returns, None), or (None, the limit it hit) when it stopped early."""
    try:
        return step(), None
    except LimitHit as hit:
        return None, str(hit)
    except RecursionError:
        return None, "the MIME structure is too deeply nested"


# Unguessable, so a mail cannot contain a stand-in of its own; never shown (`SetAside.restore`).
_STAND_IN_PREFIX = f"set-aside-base64-{secrets.token_hex(8)}-"
_STAND_IN = re.compile(re.escape(_STAND_IN_PREFIX) + r"(\d{1,6})\.")
_FOLD_LINE = _FEED_CHUNK * 4


@dataclass(slots=True)
class SetAside:
    """Large base64 bodies kept out of the feed parser, which sees a one-line stand-in for each.

    Even fed as a few long lines, the parser would copy such a body through its line buffer, join
    it and regex-search the whole text for its last line break: nearly half the parse time of a mail
    with a 200 KB attachment. Every payload is read through `decode` or `restore`, so nothing changes."""

    raw: bytes
    spans: list[tuple[int, int]] = field(default_factory=list)

    def stand_in(self, start: int, end: int) -> bytes:
        """The line the parser sees instead of `raw[start:end]`, whole base64 lines."""
        self.spans.append((start, end))
        return f"{_STAND_IN_PREFIX}{len(self.spans) - 1}.\n".encode()

    def decode(self, payload: str) -> bytes | None:
        """The decoded bytes when the payload is exactly one stand-in and valid base64, else None."""
        match = _STAND_IN.fullmatch(payload.removesuffix("\n")) if self.spans else None
        if not match or int(match.group(1)) >= len(self.spans):
            return None
        start, end = self.spans[int(match.group(1))]
        try:
            # Line breaks are skipped by the decoder: the same bytes as from the text `restore` gives.
            return binascii.a2b_base64(memoryview(self.raw)[start:end])
        except binascii.Error:
            return None

    def restore(self, text: str) -> str:
        """`text` (a payload, preamble or epilogue) with the bodies back, folded into lines of
        up to 1 MB as the parser would have held them before bodies were set aside."""
        if not self.spans or _STAND_IN_PREFIX not in text:
            return text
        return _STAND_IN.sub(self._folded, text)

    def _folded(self, match: re.Match[str]) -> str:
        index = int(match.group(1))
        if index >= len(self.spans):
            return match.group(0)
        start, end = self.spans[index]
        view = memoryview(self.raw)
        lines = (
            bytes(view[offset : min(offset + _FOLD_LINE, end)]).translate(None, b"\r\n")
            for offset in range(start, end, _FOLD_LINE)
        )
        return b"\n".join(lines).decode("ascii")


class _Guard:
    """Message factory for the feed parser: counts parts, watches depth and the clock, so a
    hostile structure stops early instead of exhausting time or the stack."""

    def __init__(self, limits: Limits, deadline: float) -> None:
        self.limits = limits
        self.deadline = deadline
        self.parser: BytesFeedParser | None = None
        self.parts = 0
        self.root: Message | None = None

    def __call__(self, policy=PARSE_POLICY) -> Message:
        message = Message(policy=policy)
        if self.parser is None:  # the probe call BytesFeedParser makes in __init__
            return message
        self.parts += 1
        if self.root is None:
            self.root = message
        if self.parts > self.limits.max_parts:
            raise LimitHit(f"more than {self.limits.max_parts} MIME parts")
        if len(getattr(self.parser, "_msgstack", ())) > self.limits.max_depth:
            raise LimitHit(f"MIME parts nested deeper than {self.limits.max_depth} levels")
        self.check_clock()
        return message

    def check_clock(self) -> None:
        check_clock(self.deadline, self.limits)


def read_message(
    raw: bytes, limits: Limits, deadline: float, defects: list[str]
) -> tuple[Message, int, str, str | None, SetAside]:
    """(message, offset where its headers start, line separator, limit hit or None, the bodies set
    aside: read payloads through it).

    Over a size limit only the header block is fed; after any limit the message is whatever the
    parser had built so far, at least the headers."""
    start = _start_offset(raw)
    header_end, body_start, too_big = _header_block(raw, start, limits.max_header_bytes)
    limit: str | None = None
    if too_big:
        limit = f"the header block is larger than {limits.max_header_bytes // 1024} KB"
    elif len(raw) > limits.max_total_bytes:
        limit = f"the message is larger than {limits.max_total_bytes // (1024 * 1024)} MB"
    block = _repair_headers(raw[start:header_end], defects)
    first_line = _LINE.match(raw, start)
    linesep = "\r\n" if first_line and first_line.group(2) == b"\r\n" else "\n"

    guard = _Guard(limits, deadline)
    parser = BytesFeedParser(_factory=guard, policy=PARSE_POLICY)
    guard.parser = parser
    aside = SetAside(raw)

    def feed() -> Message:
        parser.feed(block + b"\n\n")
        if limit is None:
            for chunk in _body_chunks(raw, body_start, aside):
                parser.feed(chunk)
                guard.check_clock()
        return parser.close()

    message, hit = within_limits(feed)
    if message is None:  # not `or`: a message without headers is falsy
        message = guard.root or Message(policy=PARSE_POLICY)
    return message, start, linesep, hit if hit is not None else limit, aside


# --- the header block ------------------------------------------------------------------------

_LINE = re.compile(rb"([^\r\n]*)(\r\n|\n|\r)")
_FIELD = re.compile(rb"[!-9;-~]+:")
_OBS_FIELD = re.compile(rb"([!-9;-~]+)[ \t]+:")
# Where a blank line starts: after a line break that another line break follows at once ("\r\n"
# is one break, so its "\n" stands for it; a lone "\r" is followed by another "\r").
_BLANK_LINE_AFTER = re.compile(rb"\n(?=[\r\n])|\r(?=\r)")
# Header lines that need no repair: each a "Name:" field or a continuation (possessive: no backtracking).
_PLAIN_BLOCK = re.compile(rb"(?:(?:[!-9;-~]+:|[ \t])[^\r\n]*+(?:\r\n|\n|\r|\Z))*+")


def _is_field(line: bytes) -> bool:
    """A header line that starts a field: "Name:" or obsolete "Name :"."""
    return bool(_FIELD.match(line) or _OBS_FIELD.match(line))


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
    if raw[start : start + 1] not in (b"\r", b"\n"):
        # The usual case, a blank line in reach, in one regex search instead of a loop over lines.
        blank = _BLANK_LINE_AFTER.search(raw, start, stop)
        if blank:
            return blank.end(), _LINE.match(raw, blank.end()).end(), False
    stray = None
    while pos < stop:
        match = _LINE.match(raw, pos)
        if not match:
            return len(raw), len(raw), False
        line = match.group(1)
        if not line:
            return pos, match.end(), False
        if stray is None and pos > start and not _is_field(line):
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
    if _PLAIN_BLOCK.fullmatch(block):  # the usual case: only "Name:" lines and continuations
        return b"\n".join(lines)
    valid = [_is_field(line) for line in lines]
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


# --- the body --------------------------------------------------------------------------------

_BLANK_LINE = re.compile(rb"\n\r?\n")
_BASE64_ALPHABET = string.ascii_letters + string.digits + "+/"
# 1 for each byte that ends a run of base64 text: all but the alphabet, "=" and line breaks.
_ENDS_BASE64 = bytes(0 if chr(byte) in _BASE64_ALPHABET + "=\r\n" else 1 for byte in range(256))
_BASE64_CTE = re.compile(rb"content-transfer-encoding:[ \t]*base64[ \t]*", re.I)
_CONTAINER_CT = re.compile(rb"content-type:[ \t]*(message|multipart)/", re.I)


def _body_chunks(raw: bytes, start: int, aside: SetAside) -> Iterator[bytes]:
    """The body in feed-sized chunks, each large base64 body replaced by a stand-in line.

    The stdlib feed parser costs about 10 µs a line, most of the time budget for a 25 MB
    attachment's 450,000 lines, and even fed as a few long lines it copies the body through its
    line buffer, joins it and regex-searches all of it for its last line break.
    """
    view = memoryview(raw)
    pos = start
    search = start
    while blank := _BLANK_LINE.search(raw, search):
        body = blank.end()
        end = raw.rfind(b"\n", body, _base64_run_end(raw, body)) + 1
        if end - body < FOLD_MIN or not _declares_base64(raw, body):
            search = max(body, end) if end > body else body
            continue
        for offset in range(pos, body, _FEED_CHUNK):
            yield bytes(view[offset : min(offset + _FEED_CHUNK, body)])
        yield aside.stand_in(body, end)
        pos = search = end
    for offset in range(pos, len(raw), _FEED_CHUNK):
        yield bytes(view[offset : offset + _FEED_CHUNK])


def _base64_run_end(raw: bytes, start: int) -> int:
    """Where the run of base64 text and line breaks that begins at `start` ends.

    A translate table and find() scan a large body three times faster than a regex; the window
    grows so that a paragraph of text costs a few hundred bytes, not the rest of the message."""
    pos, size = start, 256
    while pos < len(raw):
        found = raw[pos : pos + size].translate(_ENDS_BASE64).find(1)
        if found >= 0:
            return pos + found
        pos += size
        size = min(size * 4, _FEED_CHUNK)
    return len(raw)


def _declares_base64(raw: bytes, body: int) -> bool:
    """Whether the header block that ends in a blank line just before `body` says base64."""
    if raw[body - 2 : body] == b"\n\n":
        end = body - 1
    elif raw[body - 4 : body] == b"\r\n\r\n":
        end = body - 2
    else:
        return False
    base64 = False
    for _ in range(100):  # walk back over the part's header lines only
        line_start = raw.rfind(b"\n", 0, end - 1) + 1
        line = raw[line_start:end].rstrip(b"\r\n")
        if not line or line.startswith(b"--") or not (_FIELD.match(line) or line[:1] in b" \t"):
            return base64
        if _CONTAINER_CT.match(line):
            return False  # a (misdeclared) message/* or multipart/* body is parsed, not a file: leave it be
        base64 = base64 or bool(_BASE64_CTE.match(line))
        if line_start == 0:
            return base64
        end = line_start
    return False
