"""What intake keeps for one run of many messages (a poll, an import): the per-run caches and deferred work
(`Context`), each message's processing trace (`Trace`), what became of it (`Outcome`), and a message ready to
commit (`Prepared`)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.db.models import F

from mailboxes import blobs
from mailboxes.models import InboundMessage, Mailbox
from tickets.lookups import Lookups
from tickets.models import Queue, Ticket

log = logging.getLogger(__name__)


@dataclass
class Trace:
    """The processing trace shown to agents: steps with timings and notes."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    _t: float = field(default_factory=time.perf_counter)

    def step(self, name: str, note: str = "") -> None:
        now = time.perf_counter()
        entry: dict[str, Any] = {"step": name, "ms": round((now - self._t) * 1000, 2)}
        if note:
            entry["note"] = note[:500]
        self.steps.append(entry)
        self._t = now

    def include(self, seconds: float) -> None:
        """Count work done earlier for this message into the next step (a parse that ran ahead)."""
        self._t -= seconds

    def restart(self) -> None:
        """Start timing afresh (the wait between the two phases is not a step of this message)."""
        self._t = time.perf_counter()


@dataclass(frozen=True)
class Outcome:
    """What became of an inbound message."""

    kind: str  # new-ticket | reply | automatic | quarantined | duplicate
    ticket_id: int | None = None
    message_id: int | None = None
    reason: str = ""
    autoreply: str = ""  # why no auto-reply, or "queued"


@dataclass
class Context:
    """Per-run helpers shared by many messages (one poll batch, one import): caches, the parallel uploader,
    what a batch looked up together (`lookups`), and work deferred to the end of the batch (search index,
    mailbox counters)."""

    uploader: blobs.Uploader | None = None
    defer: bool = False
    own_addresses: dict[int, set[str]] = field(default_factory=dict)
    to_reindex: dict[int, Ticket] = field(default_factory=dict)
    imported: dict[int, int] = field(default_factory=dict)
    domains: dict = field(default_factory=dict)  # (tenant id, domain) -> Customer | None, for one run
    lookups: Lookups = field(default_factory=Lookups)
    queues: dict[int, Queue | None] = field(default_factory=dict)  # routing settings, read once per run

    def addresses_of(self, tenant_id: int) -> set[str]:
        if tenant_id not in self.own_addresses:
            rows = Mailbox.objects.filter(tenant_id=tenant_id).values_list("email", "reply_to")
            self.own_addresses[tenant_id] = {a.lower() for row in rows for a in row if a}
        return self.own_addresses[tenant_id]

    def queue(self, queue_id: int | None) -> Queue | None:
        if queue_id is None:
            return None
        if queue_id not in self.queues:
            self.queues[queue_id] = Queue.objects.filter(pk=queue_id).first()
        return self.queues[queue_id]

    def flush(self) -> None:
        """Run the deferred work: one reindex per touched ticket, one counter update per mailbox."""
        tickets, self.to_reindex = list(self.to_reindex.values()), {}
        if tickets:
            _reindex(tickets)
        counts, self.imported = self.imported, {}
        for mailbox_id, n in counts.items():
            Mailbox.objects.filter(pk=mailbox_id).update(messages_imported=F("messages_imported") + n)


@dataclass
class Prepared:
    """A parsed, classified message whose attachments are on their way to storage: ready to commit."""

    inbound: InboundMessage
    trace: Trace
    parsed: Any
    auto_kind: str
    bounce: Any
    stored: list
    html: str
    text: str

    @property
    def digests(self) -> list[str]:
        """The blobs that must be in storage before this message may be committed."""
        return [blob.sha256 for _, blob in self.stored]


def _reindex(tickets: list[Ticket]) -> None:
    from tickets import search

    try:
        search.reindex_many(tickets)
    except Exception:  # the mail is committed; a search index problem must not undo or block intake
        log.exception("reindexing %d tickets together failed; one by one", len(tickets))
        for ticket in tickets:
            try:
                search.reindex(ticket)
            except Exception:
                log.exception("reindexing ticket %s failed", ticket.pk)
