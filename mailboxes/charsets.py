"""Bytes of mail -> clean Unicode: declared charset labels mapped to Python codecs, decoding with
fallbacks that never fail, and text made safe to store.

Mail lies about its charset often: labels are misspelt, vendor-specific or plain wrong, and header
bytes arrive raw with no label at all. Every function here returns text, never raises.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence

__all__ = ["clean_text", "codec_name", "decode_body", "decode_bytes", "decode_raw"]

# "iso-8859-1" is read as windows-1252, as browsers do: such mail nearly always is.
_ALIASES = {
    "iso-gb2312": "gb18030",
    "x-gbk": "gb18030",
    "gbk": "gb18030",
    "gb2312": "gb18030",
    "x-gb2312": "gb18030",
    "euc-cn": "gb18030",
    "cn-gb": "gb18030",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ks_c_5601-1989": "cp949",
    "euc-kr": "cp949",
    "x-mac-cyrillic": "mac_cyrillic",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "x-mac-ce": "mac_latin2",
    "unicode-1-1-utf-7": "utf-7",
    "utf7": "utf-7",
    "uft-8": "utf-8",
    "utf8": "utf-8",
    "x-utf-8": "utf-8",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "windows-31j": "cp932",
    "big5": "cp950",
    "x-big5": "cp950",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "ascii",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-8-e": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "iso-8859-6-e": "iso-8859-6",
    "tis-620": "cp874",
    "windows-874": "cp874",
}
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


def codec_name(name: str | None) -> str | None:
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
            return codec_name("cp" + name.split("-", 1)[1])
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
    main = codec_name(declared)
    if main is None and b"\x1b$" in data:  # undeclared 7-bit ISO-2022-JP
        main = "iso2022_jp"
    candidates: list[str] = []
    if main:
        candidates += [main, *_SIBLINGS.get(main, ())]
    candidates.append("utf-8")
    # Multi-byte hints first: their strict decoding rarely succeeds by accident, windows-1252 always does.
    for hint in sorted(filter(None, map(codec_name, hints)), key=lambda c: not c.startswith(_MULTIBYTE)):
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


def decode_raw(text: str, hints: Sequence[str] = ()) -> str:
    """Header text as BytesParser left it (raw 8-bit bytes as surrogate escapes), decoded."""
    if not _has_surrogates(text) and "\x1b$" not in text:
        return clean_text(text)
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return clean_text(text)
    return decode_bytes(data, None, hints)


_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_:.-]{1,40})""", re.I)


def decode_body(payload: bytes, charset: str | None, html: bool, hints: Sequence[str]) -> str:
    """A text or HTML body part as text with "\\n" line ends; HTML without a usable declared
    charset is read in the charset its <meta> names."""
    if html and not codec_name(charset):
        meta = _META_CHARSET.search(payload[:4096])
        charset = meta.group(1).decode() if meta else charset
    text = decode_bytes(payload, charset, hints)
    return text.replace("\r\n", "\n").replace("\r", "\n")
