"""The MIME walk: a parsed message tree -> its text body, HTML body and attachments.

Every leaf part is either body text (text/plain or text/html, not an attachment, no file name)
or a file; attached messages are kept whole as .eml files. Payloads are freed as the walk goes,
so a large message is not held twice.
"""

from __future__ import annotations

import binascii
import email.policy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.generator import BytesGenerator
from email.message import Message
from io import BytesIO

from mailboxes.attachments import (
    Attachment,
    AttachmentKind,
    Leaf,
    build_attachments,
    is_winmail,
    name_from_location,
    unpack_tnef,
)
from mailboxes.charsets import clean_text, decode_body, decode_raw
from mailboxes.headers import content_params, decode_header_text, first, header_map, tidy
from mailboxes.rawmail import FOLD_MIN, Limits, SetAside, check_clock
from mailboxes.sanitize import html_to_text

__all__ = ["Walk", "read_parts"]


@dataclass(slots=True)
class Walk:
    hints: list[str]
    linesep: str
    deadline: float
    limits: Limits
    defects: list[str]
    aside: SetAside  # every payload is read through it
    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    leaves: list[Leaf] = field(default_factory=list)


def read_parts(root: Message, walk: Walk) -> tuple[str, str | None, tuple[Attachment, ...]]:
    """(text body, HTML body, attachments) of `root`; raises `LimitHit` when out of time."""
    _walk(root, walk)
    leaves = walk.leaves
    texts, htmls = walk.texts, walk.htmls
    for leaf in list(leaves):
        if is_winmail(leaf):
            check_clock(walk.deadline, walk.limits)
            files, tnef_text, tnef_html = unpack_tnef(leaf.payload, walk.defects)
            leaves.extend(files)
            if not any(t.strip() for t in texts) and tnef_text:
                texts.append(tnef_text)
            if not htmls and tnef_html:
                htmls.append(tnef_html)
    html = "\n".join(htmls) if htmls else None
    text = "\n".join(t.strip("\n") for t in texts if t is not None)
    if not text.strip() and html:
        check_clock(walk.deadline, walk.limits)
        text = html_to_text(html)
    return clean_text(text), clean_text(html) if html is not None else None, build_attachments(leaves, html)


def _walk(root: Message, walk: Walk) -> None:
    stack: list[Message] = [root]
    while stack:
        check_clock(walk.deadline, walk.limits)
        part = stack.pop()
        for defect in getattr(part, "defects", ()):
            walk.defects.append(_defect_words(defect))
        headers = header_map(part)
        ctype = _content_type(part)
        if part.is_multipart() and not ctype.startswith("message/"):
            stack.extend(reversed(part.get_payload()))
            continue
        _leaf(part, headers, ctype, walk)


def _leaf(part: Message, headers: Mapping[str, list[str]], ctype: str, walk: Walk) -> None:
    hints = walk.hints
    _main, ct_params = content_params(first(headers, "content-type") or "", hints)
    disposition, cd_params = content_params(first(headers, "content-disposition") or "", hints)
    filename = cd_params.get("filename") or ct_params.get("name")
    content_id = first(headers, "content-id")
    content_id = (tidy(decode_raw(content_id)).strip("<> ") or None) if content_id else None
    if ctype.startswith("message/") and part.is_multipart():
        payload = _message_bytes(part, walk.linesep, walk.aside)
        described = decode_header_text(first(headers, "content-description") or "", hints)
        if ctype in ("message/rfc822", "message/global"):
            if not filename:
                inner = part.get_payload(0)
                subject = first(header_map(inner), "subject") if isinstance(inner, Message) else None
                subject = decode_header_text(subject, hints) if subject else ""
                filename = f"{subject or described or 'message'}.eml"
            walk.leaves.append(Leaf(filename, ctype, payload, content_id, AttachmentKind.MESSAGE))
        else:
            filename = filename or f"{described or ctype.split('/')[1]}.txt"
            walk.leaves.append(Leaf(filename, ctype, payload, content_id, AttachmentKind.REGULAR))
        part.set_payload(None)
        return
    payload = _payload(part, walk.aside)
    part.set_payload("")  # the encoded text is no longer needed: free it before the next part
    is_body_type = ctype in ("text/plain", "text/html") or ctype.startswith("multipart/")
    if is_body_type and disposition != "attachment" and not filename:
        charset = ct_params.get("charset")
        text = decode_body(payload, charset, ctype == "text/html", hints)
        (walk.htmls if ctype == "text/html" else walk.texts).append(text)
        return
    if not filename:
        filename = name_from_location(first(headers, "content-location"), content_id)
    walk.leaves.append(Leaf(filename, ctype, payload, content_id, AttachmentKind.REGULAR))


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:  # a header the stdlib parser chokes on: fall back to the default type
        return part.get_default_type()


def _defect_words(defect: object) -> str:
    name = type(defect).__name__.removesuffix("Defect")
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
    detail = str(defect)
    return f"{words}: {detail}"[:200] if detail and detail != name else words


_GEN_POLICY = email.policy.default.clone(refold_source="none", max_line_length=None)


def _message_bytes(part: Message, linesep: str, aside: SetAside) -> bytes:
    """The content of a message/* part, written back with its original header lines."""
    for inner in part.walk():
        if aside.spans:  # the parser's own text, as _payload reads it
            for attribute in ("preamble", "epilogue", "_payload"):
                if isinstance(text := getattr(inner, attribute), str):
                    setattr(inner, attribute, aside.restore(text))
        payload = inner.get_payload() if not inner.is_multipart() else None
        if (
            isinstance(payload, str)
            and len(payload) > FOLD_MIN
            and "\n" not in payload[:1000]
            and str(inner.get("content-transfer-encoding", "")).strip().lower() == "base64"
        ):
            # A base64 body rawmail fed folded: back to 76-character lines for the .eml file.
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


def _payload(part: Message, aside: SetAside) -> bytes:
    """Transfer-decoded bytes, equal to `get_payload(decode=True)`; base64 is decoded in one step
    because the stdlib path keeps several copies of a large attachment alive at once."""
    cte = str(part.get("content-transfer-encoding", "")).lower()
    held = part._payload  # the parser's own text: get_payload() would decode raw 8-bit bytes
    if aside.spans and isinstance(held, str):
        if cte == "base64" and (data := aside.decode(held)) is not None:
            return data  # a body set aside, decoded straight from the raw message
        part.set_payload(aside.restore(held))
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
