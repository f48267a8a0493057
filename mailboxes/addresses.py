"""Address headers (From, Reply-To, To, Cc, Sender) -> `Address` tuples, tolerant of the ways
real mail breaks them: missing commas, stray brackets, groups, obsolete routes and folding.

The addr-spec is never decoded from RFC 2047, so an encoded-word cannot forge the sender.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from mailboxes.charsets import decode_raw
from mailboxes.headers import CONTROL, decode_header_text, strip_comments, unfold

__all__ = ["Address", "parse_addresses"]

_MAX_ADDRESSES = 1000
_ADDR_BAD = re.compile(r"[\s<>(),;:\\\[\]]")


class Address(NamedTuple):
    """One mailbox of an address header: `(name, address)`; the address is never decoded from
    RFC 2047, so an encoded-word cannot forge it."""

    name: str
    address: str


def parse_addresses(
    values: Iterable[str], hints: Sequence[str] = (), defects: list[str] | None = None
) -> tuple[Address, ...]:
    """Mailboxes of address headers, tolerant of missing commas, stray brackets and groups."""
    defects = [] if defects is None else defects
    found: list[Address] = []
    for value in values:
        for entry in _split_addresses(unfold(value)):
            if len(found) >= _MAX_ADDRESSES:
                defects.append("too many addresses; the rest ignored")
                return tuple(found)
            found += _parse_entry(entry, hints, defects)
    return tuple(found)


def _split_addresses(value: str) -> list[str]:
    if not any(separator in value for separator in ",;:"):  # one entry: skip the walk
        return [value] if value.strip() else []
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


def _parse_entry(entry: str, hints: Sequence[str], defects: list[str]) -> list[Address]:
    text, comment = strip_comments(entry)
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


def _last_angle(text: str) -> int:
    """Index of the last "<" outside quotes, or -1."""
    if '"' not in text:
        return text.rfind("<")
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
    text = strip_comments(raw)[0].strip().strip("<>").strip()
    quoted_local = re.match(r'("(?:[^"\\]|\\.)+")\s*@', text) if text.startswith('"') else None
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
    address = decode_raw(address)
    if "=?" in address and "?=" in address:
        defects.append("encoded-word inside an address (kept literally)")
    if _ADDR_BAD.search(domain) or "\ufffd" in address or CONTROL.search(address):
        return None
    return address


def _display_name(raw: str, hints: Sequence[str]) -> str:
    if '"' not in raw:
        return decode_header_text(raw, hints)
    text = re.sub(r'"((?:[^"\\]|\\.)*)"', lambda m: re.sub(r"\\(.)", r"\1", m.group(1)), raw)
    return decode_header_text(text.replace('"', ""), hints)
