"""Full-text search over tickets: subject, message bodies, contacts and the ticket number.

On PostgreSQL each ticket keeps a `search_vector` (GIN-indexed) that `reindex(ticket)` rebuilds from its
title, requester, participants and messages; whoever writes those calls it (intake, replies, merge, notes).
The `simple` configuration (no stemming) because tenants write in many languages; every term is matched as
a prefix, so "print" finds "printer". SQLite, the embedded default, falls back to LIKE over the same fields.
"""

import re
from collections.abc import Iterable

from django.contrib.postgres.search import SearchQuery
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet

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


def documents(tickets: Iterable[Ticket]) -> dict[int, tuple[str, str, str]]:
    """Each ticket's searchable text in three weights (number and title; people; message bodies), read
    for all of them at once: three queries however many tickets."""
    ids = list(dict.fromkeys(t.pk for t in tickets))
    people: dict[int, list[str]] = {pk: [] for pk in ids}
    bodies: dict[int, list[str]] = {pk: [] for pk in ids}
    heads: dict[int, str] = {}
    rows = Ticket.objects.filter(pk__in=ids).values_list(
        "pk", "number", "title", "requester__email", "requester__name"
    )
    for pk, number, title, email, name in rows:
        heads[pk] = f"{number} #{number} {title}"
        if email:
            people[pk].append(f"{name} {_address_words(email)}")
    for pk, email, name in Participant.objects.filter(ticket_id__in=ids).values_list(
        "ticket_id", "contact__email", "contact__name"
    ):
        people[pk].append(f"{name} {_address_words(email)}")
    size = dict.fromkeys(ids, 0)
    messages = Message.objects.filter(ticket_id__in=ids).values_list(
        "ticket_id", "subject", "from_name", "from_addr", "text", "html"
    )
    for pk, subject, from_name, from_addr, text, html in messages.order_by("ticket_id", "created_at", "id"):
        if size[pk] >= MAX_BODY_CHARS:
            continue
        if from_addr:
            people[pk].append(f"{from_name} {_address_words(from_addr)}")
        body = f"{subject}\n{text or html_to_text(html)}"[: MAX_BODY_CHARS - size[pk]]
        bodies[pk].append(body)
        size[pk] += len(body)
    return {pk: (heads[pk], " ".join(dict.fromkeys(people[pk])), "\n".join(bodies[pk])) for pk in heads}


def document(ticket: Ticket) -> tuple[str, str, str]:
    """One ticket's searchable text (see `documents`)."""
    return documents([ticket]).get(ticket.pk, ("", "", ""))


def reindex(ticket: Ticket) -> None:
    """Rebuild the ticket's search vector from its current title, contacts and messages (no-op on SQLite)."""
    reindex_many([ticket])


def reindex_many(tickets: Iterable[Ticket], chunk: int = 200) -> int:
    """Rebuild the search vectors of many tickets: per `chunk` tickets three reads and one UPDATE; returns
    how many (intake calls this once per batch of mail, not once per message)."""
    if not uses_postgres():
        return 0
    tickets = list(tickets)
    done = 0
    vector = " || ".join(
        f"setweight(to_tsvector('{CONFIG}'::regconfig, COALESCE(v.{col}, '')), '{weight}')"
        for col, weight in (("a", "A"), ("b", "B"), ("c", "C"))
    )
    for start in range(0, len(tickets), chunk):
        docs = documents(tickets[start : start + chunk])
        if not docs:
            continue
        values = ", ".join(["(%s::bigint, %s, %s, %s)"] * len(docs))
        params = [x for pk, doc in docs.items() for x in (pk, *doc)]
        with connection.cursor() as cur:
            cur.execute(
                f"UPDATE {Ticket._meta.db_table} AS t SET search_vector = {vector} "  # noqa: S608 (ours)
                f"FROM (VALUES {values}) AS v(id, a, b, c) WHERE t.id = v.id",
                params,
            )
        done += len(docs)
    return done


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
