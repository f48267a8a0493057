"""Which ticket does an inbound mail belong to?

Signals, strongest first (the one that matched is stored on `Message.threading_signal`):

* ``in-reply-to`` / ``references``: a Message-ID named in those headers is one of the ticket's messages (an
  inbound mail we stored, or an outbound one we sent, whose ids carry an unguessable token);
* ``subject-token``: the subject carries the ticket's *signed* token, ``[#ACME-1042-k3f9x]``: the tenant's
  reference and number, then the first five base32 characters of HMAC-SHA256(SECRET_KEY,
  "ticket-subject:<tenant id>:<number>:<reply token>"). A bare ``[#ACME-1042]`` does not thread: numbers are
  guessable, the signature is not (SECRET_KEY_FALLBACKS are accepted, so rotating the key keeps old mail).
* otherwise ``new``.

A match only counts for a sender who takes part in that ticket; anyone else gets a new ticket linked to the
matched one (``new-not-participant``). A reply to a solved or closed ticket reopens it, unless it was closed
more than `EmailSettings.reopen_window_days` ago (``new-after-reopen-window``: a new, linked ticket).
Automatic mail (bounces, out-of-office) attaches to the matched ticket whoever sent it and never reopens it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from django.conf import settings
from django.utils import timezone

from accounts.models import Tenant
from tickets.models import OPEN_STATUSES, Contact, Message, Participant, Ticket

TOKEN_RE = re.compile(r"\[#?([A-Za-z0-9][A-Za-z0-9-]*?)-(\d{1,9})-([a-z2-7]{5})\]")
SIGNATURE_LENGTH = 5


@dataclass(frozen=True)
class Match:
    """The outcome of threading: join `ticket` (reopening it when `reopen`), or open a new ticket."""

    ticket: Ticket | None
    signal: str
    related_to: Ticket | None = None
    reopen: bool = False

    @property
    def is_new(self) -> bool:
        return self.ticket is None


class Held(Protocol):
    """What the current transaction already holds and may not have written yet (`tickets.intake_writes.Writes`):
    threading asks it before the database."""

    def ticket(self, ticket_id: int) -> Ticket | None: ...

    def keep(self, ticket: Ticket) -> None: ...

    def takes_part(self, ticket: Ticket, contact: Contact) -> bool | None: ...


# --- the signed subject token -------------------------------------------------------------------------------


def _signature(tenant_id: int, number: int, reply_token: str, key: str) -> str:
    msg = f"ticket-subject:{tenant_id}:{number}:{reply_token}".encode()
    digest = hmac.new(key.encode(), msg, hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:SIGNATURE_LENGTH]


def subject_token(ticket: Ticket) -> str:
    """The signed reference customers see, e.g. ``ACME-1042-k3f9x``."""
    return f"{ticket.reference}-{_signature(ticket.tenant_id, ticket.number, ticket.reply_token, settings.SECRET_KEY)}"


def subject_tag(ticket: Ticket) -> str:
    """What outgoing subjects carry so replies thread even without headers: ``[#ACME-1042-k3f9x]``."""
    return f"[#{subject_token(ticket)}]"


def with_subject_tag(subject: str, ticket: Ticket) -> str:
    """The subject with the ticket's tag appended unless it already carries it."""
    tag = subject_tag(ticket)
    return subject if tag in subject else f"{subject} {tag}".strip()


def verify_signature(ticket: Ticket, signature: str) -> bool:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return any(
        hmac.compare_digest(_signature(ticket.tenant_id, ticket.number, ticket.reply_token, k), signature)
        for k in keys
    )


def ticket_from_subject(tenant: Tenant, subject: str) -> Ticket | None:
    """The ticket whose verified token the subject carries (the last valid one wins), else None."""
    if not subject or "[" not in subject:
        return None
    prefix = tenant.slug.upper()
    for m in reversed(list(TOKEN_RE.finditer(subject))):
        if m.group(1).upper() != prefix:
            continue
        ticket = Ticket.objects.filter(tenant=tenant, number=int(m.group(2))).first()
        if ticket is not None and verify_signature(ticket, m.group(3)):
            return ticket
    return None


# --- Message-IDs -------------------------------------------------------------------------------------------


def normalize_id(message_id: str) -> str:
    """A Message-ID as we store and compare it: without angle brackets and surrounding space."""
    return (message_id or "").strip().strip("<>").strip()


def id_variants(ids) -> list[str]:
    """Stored Message-IDs may carry angle brackets or not: both forms of each normalised id."""
    out: list[str] = []
    for i in ids:
        out += [i, f"<{i}>"]
    return out


def tickets_by_message_id(tenant: Tenant, ids: list[str], known: dict | None = None) -> dict[str, int]:
    """{normalized Message-ID: ticket id} for the ids that name a message of one of the tenant's tickets.

    `known`: a batch's answers read beforehand ((tenant id, id) -> ticket id or None, see `tickets.lookups`);
    when it covers every id no query is made."""
    from mailboxes.models import OutboundEmail

    ids = [i for i in dict.fromkeys(normalize_id(i) for i in ids) if i][:50]
    if not ids:
        return {}
    if known is not None and all((tenant.pk, i) in known for i in ids):
        return {i: known[(tenant.pk, i)] for i in ids if known[(tenant.pk, i)] is not None}
    found: dict[str, int] = {}
    for mid, ticket_id in OutboundEmail.objects.filter(
        tenant=tenant, message_id__in=id_variants(ids), ticket__isnull=False
    ).values_list("message_id", "ticket_id"):
        found.setdefault(normalize_id(mid), ticket_id)
    missing = [i for i in ids if i not in found]
    if missing:
        for mid, ticket_id in Message.objects.filter(
            tenant=tenant, message_id__in=id_variants(missing)
        ).values_list("message_id", "ticket_id"):
            found.setdefault(normalize_id(mid), ticket_id)
    return found


def _load(ticket_id: int, held: Held | None) -> Ticket:
    ticket = held.ticket(ticket_id) if held is not None else None
    if ticket is None:
        # Not the search vector: it can be large, and threading never reads it.
        ticket = Ticket.objects.select_related("tenant").defer("search_vector").get(pk=ticket_id)
        if held is not None:
            held.keep(ticket)
    return ticket


def _resolve(ticket_id: int, held: Held | None = None) -> Ticket:
    ticket = _load(ticket_id, held)
    seen = {ticket.pk}
    while ticket.merged_into_id and ticket.merged_into_id not in seen:  # follow merges to the survivor
        seen.add(ticket.merged_into_id)
        ticket = _load(ticket.merged_into_id, held)
    return ticket


def header_match(
    tenant: Tenant,
    in_reply_to: str,
    references: list[str],
    known: dict | None = None,
    held: Held | None = None,
) -> tuple[Ticket, str] | None:
    """The ticket named by In-Reply-To, else by the most recent References entry, with the signal."""
    irt = [normalize_id(x) for x in re.split(r"[\s,]+", in_reply_to or "") if normalize_id(x)]
    refs = [normalize_id(r) for r in references or () if normalize_id(r)]
    found = tickets_by_message_id(tenant, irt + refs, known)
    for mid in irt:
        if mid in found:
            return _resolve(found[mid], held), "in-reply-to"
    for mid in reversed(refs):
        if mid in found:
            return _resolve(found[mid], held), "references"
    return None


# --- the decision -------------------------------------------------------------------------------------------


def is_participant(ticket: Ticket, contact: Contact | None, held: Held | None = None) -> bool:
    if contact is None:
        return False
    if ticket.requester_id == contact.pk:
        return True
    answer = held.takes_part(ticket, contact) if held is not None else None
    if answer is not None:
        return answer
    return Participant.objects.filter(ticket=ticket, contact=contact).exists()


def within_reopen_window(ticket: Ticket, days: int) -> bool:
    ended = ticket.closed_at or ticket.solved_at or ticket.updated_at
    return ended is None or ended >= timezone.now() - timedelta(days=days)


def find_ticket(
    tenant: Tenant,
    *,
    subject: str,
    in_reply_to: str,
    references: list[str],
    sender: Contact | None,
    automatic: bool = False,
    bounce_of: str = "",
    reopen_window_days: int = 30,
    known: dict | None = None,
    held: Held | None = None,
) -> Match:
    """Decide where an inbound mail goes; see the module docstring for the rules (`known`: see
    `tickets_by_message_id`; `held`: the transaction's tickets, see `Held`)."""
    found: tuple[Ticket, str] | None = None
    if bounce_of:
        hit = tickets_by_message_id(tenant, [bounce_of], known)
        if hit:
            found = (_resolve(next(iter(hit.values())), held), "bounce")
    if found is None:
        found = header_match(tenant, in_reply_to, references, known, held)
    if found is None:
        ticket = ticket_from_subject(tenant, subject)
        if ticket is not None:
            found = (_resolve(ticket.pk, held), "subject-token")
    if found is None:
        return Match(None, "new")
    ticket, signal = found
    if automatic:
        return Match(ticket, signal)
    if not is_participant(ticket, sender, held):
        return Match(None, "new-not-participant", related_to=ticket)
    if ticket.status in OPEN_STATUSES:
        return Match(ticket, signal)
    if within_reopen_window(ticket, reopen_window_days):
        return Match(ticket, signal, reopen=True)
    return Match(None, "new-after-reopen-window", related_to=ticket)
