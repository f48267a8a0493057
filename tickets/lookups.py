"""What one batch of inbound mail needs to know, read together before its messages are committed one by one.

Intake asks three questions of every message: is this Message-ID already stored (a duplicate)? which ticket
does a Message-ID it answers belong to (threading)? which contact is this address (a new one is created)?
Asked one message at a time that is four to six statements each; `Lookups.load` answers them for a whole
poll batch in four, and each commit then adds what it created (`remember`), so a reply later in the same
batch still finds the ticket an earlier message opened.

The answers are a fast path, never the authority: an id or address the batch did not load is queried as
before, a unique constraint on stored Message-IDs catches a duplicate another worker committed meanwhile,
and after any failed commit (whose rollback may have undone a contact this cache holds) `forget` drops
everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from accounts.models import Tenant
from mailboxes.models import OutboundEmail
from tickets import contacts
from tickets.contacts import normalize_address
from tickets.models import Contact, Message, MessageKind
from tickets.threading import id_variants, normalize_id

MAX_IDS_PER_MESSAGE = 50  # as `threading.tickets_by_message_id`: the first 50 of In-Reply-To + References


@dataclass
class Lookups:
    """Per-run answers keyed by (tenant id, normalised value); see the module docstring."""

    contacts: dict[tuple[int, str], Contact | None] = field(default_factory=dict)
    tickets: dict[tuple[int, str], int | None] = field(default_factory=dict)  # Message-ID -> ticket id
    stored: dict[tuple[int, str], str | None] = field(default_factory=dict)  # Message-ID -> why a duplicate

    def load(self, tenant: Tenant, mails: Iterable[Any], *, own: set[str], domains: dict) -> None:
        """Read what these parsed mails will ask about (addresses, their own and referenced Message-IDs), and
        create the contacts of the new addresses among them (`own`: our mailboxes' addresses, never contacts;
        `domains`: the run's customer-by-domain cache)."""
        tenant_id = tenant.pk
        addresses: dict[str, str] = {}  # email -> the first display name it came with
        own_ids: set[str] = set()
        thread_ids: set[str] = set()
        for parsed in mails:
            for addr in [parsed.from_addr, *parsed.to[:20], *parsed.cc[:20]]:
                email = normalize_address(addr.address) if addr is not None else ""
                if email and email not in own and (tenant_id, email) not in self.contacts:
                    addresses.setdefault(email, addr.name)
            if parsed.message_id:
                own_ids.add(normalize_id(parsed.message_id))
            named = [normalize_id(i) for i in (*parsed.in_reply_to, *parsed.references)]
            thread_ids.update([i for i in dict.fromkeys(named) if i][:MAX_IDS_PER_MESSAGE])
        self._load_contacts(tenant, addresses, domains)
        self._load_ids(tenant_id, {i for i in own_ids | thread_ids if i})

    def _load_contacts(self, tenant: Tenant, addresses: dict[str, str], domains: dict) -> None:
        """Existing contacts, then the new ones in one statement (a mail that fails later leaves its sender
        as a contact without messages, which is harmless)."""
        if not addresses:
            return
        found = {c.email: c for c in Contact.objects.filter(tenant=tenant, email__in=list(addresses))}
        new = {email: name for email, name in addresses.items() if email not in found}
        if new:
            found.update((c.email, c) for c in contacts.create_many(tenant, new, cache=domains))
        for email in addresses:
            self.contacts[(tenant.pk, email)] = found.get(email)

    def _load_ids(self, tenant_id: int, ids: set[str]) -> None:
        ids = {i for i in ids if (tenant_id, i) not in self.tickets or (tenant_id, i) not in self.stored}
        if not ids:
            return
        variants = id_variants(ids)
        tickets: dict[str, int | None] = dict.fromkeys(ids)
        stored: dict[str, str | None] = dict.fromkeys(ids)
        for mid, ticket_id in OutboundEmail.objects.filter(
            tenant_id=tenant_id, message_id__in=variants
        ).values_list("message_id", "ticket_id"):
            key = normalize_id(mid)
            stored[key] = stored[key] or "our own outgoing message"
            if ticket_id is not None and tickets[key] is None:
                tickets[key] = ticket_id  # what we sent names its ticket first, as in threading
        for mid, ticket_id, kind in Message.objects.filter(
            tenant_id=tenant_id, message_id__in=variants
        ).values_list("message_id", "ticket_id", "kind"):
            key = normalize_id(mid)
            if tickets[key] is None:
                tickets[key] = ticket_id
            if kind in (MessageKind.INBOUND, MessageKind.AUTOMATIC):
                stored[key] = f"already stored (ticket id {ticket_id})"
        for key in ids:
            self.tickets[(tenant_id, key)] = tickets[key]
            self.stored[(tenant_id, key)] = stored[key]

    def ticket_ids(self, tenant_id: int, mails: Iterable[Any]) -> set[int]:
        """The tickets these parsed mails answer, as far as the batch read them (threading still decides)."""
        found: set[int] = set()
        for parsed in mails:
            for mid in [*parsed.in_reply_to, *parsed.references][:MAX_IDS_PER_MESSAGE]:
                ticket_id = self.tickets.get((tenant_id, normalize_id(mid)))
                if ticket_id is not None:
                    found.add(ticket_id)
        return found

    def duplicate_of(self, tenant_id: int, message_id: str) -> str | None:
        """Why this Message-ID is already known (we stored it, or it is our own outgoing mail), else None:
        from what the batch read, else read now. The unique constraint on stored ids catches what changed
        since."""
        key = normalize_id(message_id)
        if not key:
            return None
        if (tenant_id, key) not in self.stored:
            self._load_ids(tenant_id, {key})
        return self.stored[(tenant_id, key)]

    def remember(self, tenant_id: int, message_id: str, ticket_id: int) -> None:
        """A message was committed into `ticket_id`: later mail of the run threads to it and is a duplicate."""
        key = (tenant_id, normalize_id(message_id))
        if key[1]:
            self.stored[key] = f"already stored (ticket id {ticket_id})"
            if self.tickets.get(key) is None:
                self.tickets[key] = ticket_id

    def forget(self) -> None:
        """A commit failed: what this cache holds may have been rolled back; start from the database again."""
        self.contacts.clear()
        self.tickets.clear()
        self.stored.clear()
