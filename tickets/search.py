"""Full-text search over tickets: subject, message bodies, contacts and the ticket number.

On PostgreSQL each ticket keeps a `search_vector` (GIN-indexed) that `reindex(ticket)` rebuilds from its
title, requester, participants and messages; whoever writes those calls it (intake, replies, merge, notes).
The `simple` configuration (no stemming) because tenants write in many languages; every term is matched as
a prefix, so "print" finds "printer". SQLite, the embedded default, falls back to LIKE over the same fields.
"""

import re
from collections.abc import Iterable

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet, TextField, Value

from mailboxes.sanitize import html_to_text
from tickets.models import Message, Participant, Ticket

CONFIG = "simple"
# tsvector values are limited to 1 MB; bodies past this much text add little to finding a ticket.
MAX_BODY_CHARS = 200_000
MAX_TERMS = 12
_TERM = re.compile(r"[\w@.+-]+")
_NUMBER = re.compile(r"^(?:#|[A-Za-z][A-Za-z0-9-]*-)?(\d{1,9})$")


def uses_postgres() -> bool:
    return connection.vendor == "postgresql"


def _address_words(email: str) -> str:
    """An address plus its parts, so "jane", "customer.test" and the whole address all match."""
    local, _, domain = email.partition("@")
    return f"{email} {local} {domain} {domain.replace('.', ' ')}"


def document(ticket: Ticket) -> tuple[str, str, str]:
    """The ticket's searchable text in three weights: number and title; people; message bodies."""
    title = f"{ticket.number} #{ticket.number} {ticket.title}"
    people: list[str] = []
    contacts = Participant.objects.filter(ticket=ticket).values_list("contact__email", "contact__name")
    if ticket.requester_id:
        contacts = [(ticket.requester.email, ticket.requester.name), *contacts]
    for email, name in contacts:
        people.append(f"{name} {_address_words(email)}")
    bodies: list[str] = []
    size = 0
    rows = Message.objects.filter(ticket=ticket).values_list(
        "subject", "from_name", "from_addr", "text", "html"
    )
    for subject, from_name, from_addr, text, html in rows.order_by("created_at", "id"):
        if from_addr:
            people.append(f"{from_name} {_address_words(from_addr)}")
        body = f"{subject}\n{text or html_to_text(html)}"
        bodies.append(body[: MAX_BODY_CHARS - size])
        size += len(bodies[-1])
        if size >= MAX_BODY_CHARS:
            break
    return title, " ".join(dict.fromkeys(people)), "\n".join(bodies)


def reindex(ticket: Ticket) -> None:
    """Rebuild the ticket's search vector from its current title, contacts and messages (no-op on SQLite)."""
    if not uses_postgres():
        return
    title, people, bodies = document(ticket)

    def weighted(text: str, weight: str) -> SearchVector:
        return SearchVector(Value(text, output_field=TextField()), weight=weight, config=CONFIG)

    vector = weighted(title, "A") + weighted(people, "B") + weighted(bodies, "C")
    Ticket.objects.filter(pk=ticket.pk).update(search_vector=vector)


def reindex_many(tickets: Iterable[Ticket]) -> int:
    """reindex() each ticket; returns how many."""
    count = 0
    for ticket in tickets:
        reindex(ticket)
        count += 1
    return count


def terms(query: str) -> list[str]:
    """The words of a query, without the punctuation tsquery would read as operators."""
    words = (t.strip(".+-@") for t in _TERM.findall(query or ""))
    return [w for w in words if w][:MAX_TERMS]


def ticket_number(query: str) -> int | None:
    """1042, #1042 and ACME-1042 all name ticket 1042."""
    match = _NUMBER.match((query or "").strip())
    return int(match.group(1)) if match else None


def search(qs: QuerySet, query: str) -> QuerySet:
    """Tickets of `qs` matching every word of `query` (as prefixes), or whose number it names."""
    words = terms(query)
    if not words:
        return qs
    number = ticket_number(query)
    by_number = Q(number=number) if number is not None else Q(pk__in=[])
    if uses_postgres():
        # Each term is quoted (it holds no quote: see _TERM) and matched as a prefix; all must match.
        raw = " & ".join(f"'{w}':*" for w in words)
        return qs.filter(Q(search_vector=SearchQuery(raw, search_type="raw", config=CONFIG)) | by_number)
    return qs.filter(_like_all(words) | by_number)


def _like_all(words: list[str]) -> Q:
    match = Q()
    for word in words:
        in_messages = Message.objects.filter(ticket=OuterRef("pk")).filter(
            Q(text__icontains=word)
            | Q(html__icontains=word)
            | Q(subject__icontains=word)
            | Q(from_addr__icontains=word)
            | Q(from_name__icontains=word)
        )
        match &= (
            Q(title__icontains=word)
            | Q(requester__email__icontains=word)
            | Q(requester__name__icontains=word)
            | Q(Exists(in_messages))
        )
    return match
