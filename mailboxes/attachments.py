"""Attachments of an inbound mail: safe file names, content types believed from the bytes rather
than the label, winmail.dat (TNEF) unpacking, and which images the HTML body shows inline.

The MIME walk (`mailboxes.mimeparts`) collects `Leaf`s; `build_attachments` turns them into the
`Attachment`s a `ParsedMail` carries.
"""

from __future__ import annotations

import enum
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

import filetype
import tnefparse

from mailboxes.charsets import clean_text, decode_bytes, decode_raw
from mailboxes.headers import tidy

__all__ = [
    "Attachment",
    "AttachmentKind",
    "Leaf",
    "build_attachments",
    "is_winmail",
    "name_from_location",
    "safe_filename",
    "unpack_tnef",
]

_MAX_FILENAME = 180
# tnefparse copies the rest of its input for every object it reads: bound objects and copying.
_MAX_TNEF_OBJECTS = 10_000
_MAX_TNEF_COPY = 4_000_000_000


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


@dataclass(slots=True)
class Leaf:
    """A part the MIME walk kept as a file, before its name and type are made safe."""

    filename: str | None
    content_type: str
    payload: bytes
    content_id: str | None
    kind: AttachmentKind


# --- names and types -------------------------------------------------------------------------

_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|]')
_RESERVED_NAMES = re.compile(r"(con|prn|aux|nul|com\d|lpt\d)(\..*)?", re.I)
_NAME_LIKE = re.compile(r"[\w ()+,.-]{1,100}\.[A-Za-z0-9]{1,5}")
_MEDIA = ("image", "audio", "video")
_TNEF_TYPES = ("application/ms-tnef", "application/vnd.ms-tnef")
_GENERIC_TYPES = set(
    [
        "application/octet-stream",
        "application/unknown",
        "application/x-unknown",
        "application/binary",
        "application/download",
        "application/force-download",
        "application/x-download",
        "binary/octet-stream",
        "application/x-octet-stream",
        "application/x-msdownload",
        "application/applefile",
    ]
)
_ZIP_FAMILY = ("openxmlformats", "opendocument", "zip", "java-archive", "epub", "vnd.ms-", "apk")
_TYPE_FIXES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}
_EXTENSIONS = {
    "text/plain": "txt",
    "text/html": "html",
    "text/calendar": "ics",
    "text/csv": "csv",
    "text/rfc822-headers": "txt",
    "text/enriched": "txt",
    "text/richtext": "txt",
    "text/xml": "xml",
    "message/rfc822": "eml",
    "message/global": "eml",
    "application/pdf": "pdf",
    "application/pgp-signature": "asc",
    "application/pgp-encrypted": "asc",
    "application/pkcs7-signature": "p7s",
    "application/x-pkcs7-signature": "p7s",
    "application/pkcs7-mime": "p7m",
    "application/x-pkcs7-mime": "p7m",
    "application/ms-tnef": "dat",
    "application/vnd.ms-tnef": "dat",
    "application/msword": "doc",
    "application/vnd.ms-excel": "xls",
    "application/json": "json",
    "application/xml": "xml",
    "application/postscript": "ps",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "video/quicktime": "mov",
    "video/mp4": "mp4",
    "audio/mpeg": "mp3",
    "audio/basic": "au",
}
_BY_EXTENSION = {
    "txt": "text/plain",
    "csv": "text/csv",
    "ics": "text/calendar",
    "eml": "message/rfc822",
    "htm": "text/html",
    "html": "text/html",
    "doc": "application/msword",
    "xls": "application/vnd.ms-excel",
    "ppt": "application/vnd.ms-powerpoint",
    "msg": "application/vnd.ms-outlook",
    "asc": "application/pgp-signature",
    "p7s": "application/pkcs7-signature",
    "p7m": "application/pkcs7-mime",
    "json": "application/json",
    "xml": "application/xml",
}


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


def name_from_location(location: str | None, content_id: str | None) -> str | None:
    """A name Outlook put elsewhere: Content-Location's last segment or "image001.png@01D..."."""
    for candidate in (
        (location or "").strip().rsplit("/", 1)[-1].rsplit("\\", 1)[-1],
        (content_id or "").rsplit("@", 1)[0] if "@" in (content_id or "") else "",
    ):
        candidate = tidy(decode_raw(candidate))
        if _NAME_LIKE.fullmatch(candidate):
            return candidate
    return None


def _generated_name(ctype: str, payload: bytes, index: int) -> str:
    if ctype == "text/calendar":
        return f"invite-{index}.ics"
    subtype = ctype.split("/")[-1]
    ext = _EXTENSIONS.get(ctype) or _sniff(payload)[1] or (subtype if subtype.isalnum() else "")
    ext = ext[:5].lower() if ext and ext.isalnum() else "bin"
    major = ctype.split("/")[0]
    stem = major if major in _MEDIA else "attachment"
    return f"{stem}-{index}.{ext}"


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
    if declared.split("/")[0] in _MEDIA or sniffed.split("/")[0] in _MEDIA:
        return sniffed
    if sniffed in ("application/x-msdownload", "application/x-executable", "application/x-elf"):
        return sniffed
    return declared


# --- winmail.dat -----------------------------------------------------------------------------


def is_winmail(leaf: Leaf) -> bool:
    return leaf.content_type in _TNEF_TYPES or (leaf.filename or "").lower() == "winmail.dat"


def unpack_tnef(data: bytes, defects: list[str]) -> tuple[list[Leaf], str | None, str | None]:
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
            leaves.append(Leaf(name or None, sniffed, payload, None, AttachmentKind.WINMAIL))
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


# --- leaves -> attachments -------------------------------------------------------------------

_CID_REF = re.compile(r"""cid:([^"'\s>)]+)""", re.I)


def _referenced_cids(html: str | None) -> set[str]:
    if not html:
        return set()
    return {
        unquote_to_bytes(m.group(1)).decode("utf-8", "replace").strip("<>").casefold()
        for m in _CID_REF.finditer(html)
    }


def build_attachments(leaves: list[Leaf], html: str | None) -> tuple[Attachment, ...]:
    """Safe names (generated when missing), believable types, and inline marked for the images
    `html` references through cid:."""
    # Searching a large HTML body for "cid:" is costly: only done when a part has a Content-ID.
    cids = _referenced_cids(html) if any(leaf.content_id for leaf in leaves) else set()
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
