"""One batch of a poll on its way from the IMAP folder into tickets: fetch, record, commit.

* `_fetch`: FETCH ``BODY.PEEK[]`` and INTERNALDATE; start uploading the raw bytes; parse the batch meanwhile;
* `_record`: wait for the batch's raw bytes to be in storage, then record the ledger rows and advance the
  folder position in one commit (`inbound.record_batch`); classify each message and start uploading its
  attachments (`intake.prepare`); read what the batch will ask the database about (`tickets.lookups`);
* `_commit`: commit the messages twenty to a transaction, each group once its attachments are stored; then
  the search index, the counters and the after-import action on the server.

That order keeps every message safe: raw bytes are stored before their ledger rows exist, attachments before
their message commits, and the after-import action runs only for committed messages. A big message comes in
a batch of its own, fetched in chunks, so memory stays bounded.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db.models import F
from django.utils import timezone

from mailboxes import inbound
from mailboxes.models import FolderState, InboundStatus, Mailbox

log = logging.getLogger(__name__)

LARGE_MESSAGE = 4 * 1024 * 1024  # fetched alone, in chunks
LARGE_CHUNK = 4 * 1024 * 1024
# Messages committed in one transaction (one WAL flush each group; a failure redoes the group one by one).
COMMIT_GROUP = 20


@dataclass
class _Batch:
    """One batch between the stages."""

    uids: list[int]
    items: list[inbound.Fetched] = field(default_factory=list)
    parsed: dict[int, tuple] = field(default_factory=dict)  # uid -> (ParsedMail, seconds it took)
    digests: list[str] = field(default_factory=list)  # the raw bytes on their way to storage
    prepared: list = field(default_factory=list)  # intake.Prepared, ready to commit
    history: int = 0
    large: bool = False


def take(
    client, mailbox: Mailbox, state: FolderState, uids: list[int], sizes: dict[int, int], context, result
):
    """Take one batch of UIDs (see `polling._batches`) into tickets; `result` counts what became of them."""
    if len(uids) == 1 and sizes.get(uids[0], 0) > LARGE_MESSAGE:
        batch = _fetch_large(client, uids[0], context.uploader)
    else:
        batch = _fetch(client, uids, context.uploader)
    _record(batch, mailbox, state, context, result)
    _commit(batch, client, mailbox, state, context, result)


def _fetch(client, uids: list[int], uploader) -> _Batch:
    batch = _Batch(uids)
    response = client.fetch(uids, ["BODY.PEEK[]", "INTERNALDATE"])
    for uid in uids:
        data = response.pop(uid, None)
        raw = data.get(b"BODY[]") if data is not None else None
        if raw is None:  # expunged between SEARCH and FETCH
            continue
        batch.items.append(inbound.Fetched(uid, bytes(raw), aware(data.get(b"INTERNALDATE"))))
    del response
    _upload(batch, uploader)
    _parse_ahead(batch.items, batch.parsed)
    return batch


def _fetch_large(client, uid: int, uploader) -> _Batch:
    """A big message in 4 MB partial FETCHes spooled to a temporary file, then read back in one piece.

    imaplib holds a literal up to three times while reading it; this way the worker holds the message once.
    It is parsed later, streaming its big attachments straight to storage (`intake.prepare`)."""
    batch = _Batch([uid], large=True)
    internal = None
    with tempfile.TemporaryFile(buffering=0) as spool:
        offset = 0
        while True:
            items = [f"BODY.PEEK[]<{offset}.{LARGE_CHUNK}>"] + (["INTERNALDATE"] if offset == 0 else [])
            data = client.fetch([uid], items).get(uid)
            if data is None:
                return batch  # expunged meanwhile
            if offset == 0:
                internal = data.get(b"INTERNALDATE")
            chunk = data.get(f"BODY[]<{offset}>".encode()) or b""
            spool.write(chunk)
            offset += len(chunk)
            if len(chunk) < LARGE_CHUNK:
                break
            del data, chunk
        spool.seek(0)
        raw = spool.read()
    batch.items.append(inbound.Fetched(uid, raw, aware(internal)))
    _upload(batch, uploader)
    return batch


def _upload(batch: _Batch, uploader) -> None:
    """Start storing the batch's raw bytes (in the uploader's threads)."""
    for item in batch.items:
        item.blob = uploader.submit(item.raw)
    batch.digests = [item.blob.sha256 for item in batch.items]


def _record(batch: _Batch, mailbox: Mailbox, state: FolderState, context, result) -> None:
    from tickets.intake import Outcome, prepare

    result.fetched += len(batch.items)
    context.uploader.wait_for(batch.digests)  # raw bytes are safe before the rows that point at them
    new = inbound.record_batch(
        mailbox, state, batch.items, connected_at=mailbox.connected_at, advance_to=max(batch.uids)
    )
    batch.items = []
    rows = [(row, raw) for row, raw in new if row.status == InboundStatus.STORED]
    result.duplicates += len(new) - len(rows)
    del new
    batch.history = sum(1 for row, _ in rows if row.is_history)
    rows.reverse()
    while rows:  # popped one by one: no reference to a big message stays here
        row, raw = rows.pop()
        ahead, seconds = batch.parsed.pop(row.uid, (None, 0.0))
        item = prepare(row, raw, context=context, parsed=ahead, parse_seconds=seconds)
        del raw, ahead
        if isinstance(item, Outcome):
            result.count(item.kind)
        else:
            batch.prepared.append(item)
    batch.parsed.clear()
    if batch.prepared:
        own = context.addresses_of(mailbox.tenant_id)
        parsed = [item.parsed for item in batch.prepared]
        context.lookups.load(mailbox.tenant, parsed, own=own, domains=context.domains)


def _commit(batch: _Batch, client, mailbox: Mailbox, state: FolderState, context, result) -> None:
    from tickets.intake import commit_many

    prepared = batch.prepared
    for start in range(0, len(prepared), COMMIT_GROUP):
        group = prepared[start : start + COMMIT_GROUP]
        for item in group:
            context.uploader.wait_for(item.digests)
        for outcome in commit_many(group, context=context):
            result.count(outcome.kind)
        prepared[start : start + COMMIT_GROUP] = [None] * len(group)  # let the group's bodies go
    batch.prepared = []
    context.uploader.wait()  # all it holds is this batch's, done by now: let the finished uploads go
    context.flush()
    if batch.large:
        trim_memory()
    if batch.history:
        Mailbox.objects.filter(pk=mailbox.pk).update(history_done=F("history_done") + batch.history)
    result.after_import += apply_after_import(client, mailbox, state.folder, state.uidvalidity)


def _parse_ahead(items: list[inbound.Fetched], into: dict) -> None:
    """Parse the batch's messages while their raw bytes travel to storage (big ones stream later)."""
    from mailboxes import parsing

    for item in items:
        if len(item.raw) <= LARGE_MESSAGE:
            started = time.perf_counter()
            try:
                into[item.uid] = (parsing.parse(item.raw), time.perf_counter() - started)
            except Exception:  # cannot happen by contract; if it does, intake parses again and quarantines
                log.exception("parsing message uid %s ahead failed", item.uid)


def aware(value: datetime | None) -> datetime | None:
    """INTERNALDATE as an aware datetime (imapclient gives local time without tzinfo)."""
    if value is None:
        return None
    if timezone.is_naive(value):
        return value.astimezone(UTC)
    return value


def trim_memory() -> None:
    """Return freed heap memory to the system (after a big message)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


# --- after import ---------------------------------------------------------------------------------------------


def apply_after_import(client, mailbox: Mailbox, folder: str, uidvalidity: int) -> int:
    """Run the mailbox's after-import action for every committed message not yet done; returns how many.

    Only rows whose processing committed are touched, so "delete after import" never removes a message
    that is not safely in a ticket, the quarantine or the duplicate list.
    """
    from mailboxes.models import AfterImport

    rows = list(inbound.awaiting_after_import(mailbox, folder, uidvalidity).values_list("pk", "uid"))
    if not rows:
        return 0
    for start in range(0, len(rows), 500):
        uids = [uid for _, uid in rows[start : start + 500]]
        action = mailbox.after_import
        if action == AfterImport.MARK_READ:
            client.add_flags(uids, [b"\\Seen"], silent=True)
        elif action == AfterImport.DELETE:
            _delete(client, uids)
        elif action == AfterImport.MOVE and mailbox.after_import_folder:
            _move(client, uids, mailbox.after_import_folder)
    inbound.mark_after_import_done(pk for pk, _ in rows)
    return len(rows)


def _move(client, uids: list[int], target: str) -> None:
    if not client.folder_exists(target):
        client.create_folder(target)
    if client.has_capability("MOVE"):
        client.move(uids, target)
    else:
        client.copy(uids, target)
        _delete(client, uids)


def _delete(client, uids: list[int]) -> None:
    client.delete_messages(uids, silent=True)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(uids)
    else:
        client.expunge()
