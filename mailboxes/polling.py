"""Polling a mailbox: schedule, lease, fetch, record, process, after-import action, backoff.

One poll of one mailbox (`poll(mailbox_id)`):

1. lease the mailbox with a conditional UPDATE (one poller per mailbox; a lease left by a crashed process
   expires, or is taken over at once when its owner was a process on this host that no longer exists);
2. sign in (`imap.session`), then for each folder: SELECT, check UIDVALIDITY (a change resets the folder's
   position; the ledger's content dedupe and intake's Message-ID dedupe make the resync create nothing
   twice), finish what a crash left behind (rows stored but not processed, after-import actions not done);
3. UID SEARCH ``last+1:*`` (+ SINCE the import-from date, + the header filter); FETCH ``BODY.PEEK[]`` and
   INTERNALDATE in batches (large messages alone, so memory stays bounded);
4. per batch (`poll_batches`): raw bytes to storage while the batch is parsed, ledger rows + folder position
   in one commit, the batch's contacts and Message-IDs read together (`tickets.lookups`), then the messages
   committed twenty to a transaction (a failing group is retried one by one), then the after-import action
   for the committed ones;
5. record success on the mailbox's health, or back off (exponential, with jitter) and say why.

A message that cannot be processed is quarantined (intake does that) and never stops the batch; a mailbox
that cannot be reached only delays itself.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import close_old_connections
from django.db.models import F
from django.utils import timezone

from mailboxes import blobs, inbound, poll_batches
from mailboxes.models import AfterImport, FolderState, Mailbox
from mailboxes.poll_health import record_failure, record_success
from mailboxes.poll_leases import LeaseLost, acquire_lease, new_owner, release_lease, renew_lease

log = logging.getLogger(__name__)

# Messages per FETCH / ledger commit. Smaller batches commit sooner (the crash test uses 25); the environment
# variable INBOUND_FETCH_BATCH overrides it.
BATCH_MESSAGES = int(os.environ.get("INBOUND_FETCH_BATCH", "200"))
BATCH_BYTES = 16 * 1024 * 1024
LARGE_MESSAGE = poll_batches.LARGE_MESSAGE  # fetched alone, in chunks


@dataclass
class PollResult:
    mailbox_id: int
    leased: bool = True
    fetched: int = 0
    new_tickets: int = 0
    replies: int = 0
    automatic: int = 0
    quarantined: int = 0
    duplicates: int = 0
    after_import: int = 0
    error: str = ""
    seconds: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str) -> None:
        self.outcomes[kind] = self.outcomes.get(kind, 0) + 1
        attr = {
            "new-ticket": "new_tickets",
            "reply": "replies",
            "automatic": "automatic",
            "quarantined": "quarantined",
            "duplicate": "duplicates",
        }.get(kind)
        if attr:
            setattr(self, attr, getattr(self, attr) + 1)


# --- scheduling ---------------------------------------------------------------------------------------------


def due_mailbox_ids(now: datetime | None = None) -> list[int]:
    """Mailboxes whose poll interval has passed, claimed for this round (their next_poll_at is pushed on)."""
    now = now or timezone.now()
    ids = []
    for pk, interval, next_at in Mailbox.objects.due_for_poll(now).values_list(
        "pk", "poll_interval", "next_poll_at"
    ):
        # Conditional: two schedulers racing hand out each mailbox once.
        claimed = Mailbox.objects.filter(pk=pk, next_poll_at=next_at).update(
            next_poll_at=now + timedelta(seconds=interval)
        )
        if claimed:
            ids.append(pk)
    return ids


def wake(mailbox_id: int) -> None:
    """Make a mailbox due now (IDLE saw new mail)."""
    Mailbox.objects.filter(pk=mailbox_id).update(next_poll_at=timezone.now())


# --- polling ------------------------------------------------------------------------------------------------

_malloc_tuned = False


def tune_malloc() -> None:
    """Make glibc give big buffers back to the system at once (a 25 MB attachment must not stay resident).

    glibc raises its mmap threshold after the first large free, after which 8 MB upload parts and message
    bodies come from the heap and stay in RSS; a fixed threshold keeps them mmapped. No-op elsewhere.
    """
    global _malloc_tuned
    if _malloc_tuned:
        return
    _malloc_tuned = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 256 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1024 * 1024)  # M_TRIM_THRESHOLD
        libc.mallopt(-8, 2)  # M_ARENA_MAX: upload threads need no arenas of their own
    except (OSError, AttributeError):
        pass


def poll(mailbox_id: int, *, owner: str | None = None, limit: int | None = None) -> PollResult:
    """Poll one mailbox end to end (see the module docstring); never raises for mail or server problems."""
    from mailboxes import imap
    from tickets.intake import Context

    owner = owner or new_owner()
    tune_malloc()
    started = time.monotonic()
    result = PollResult(mailbox_id)
    close_old_connections()
    if not acquire_lease(mailbox_id, owner):
        result.leased = False
        return result
    mailbox = Mailbox.objects.select_related("tenant").get(pk=mailbox_id)
    try:
        if mailbox.connected_at is None:
            mailbox.connected_at = timezone.now()
            Mailbox.objects.filter(pk=mailbox.pk, connected_at__isnull=True).update(
                connected_at=mailbox.connected_at
            )
        with blobs.Uploader() as uploader:
            context = Context(uploader=uploader, defer=True)
            _process_pending(mailbox, context, result)
            with imap.session(mailbox) as client:
                for folder in mailbox.folders_to_poll():
                    poll_folder(client, mailbox, folder, owner, context, result, limit=limit)
        record_success(mailbox)
    except LeaseLost as exc:
        result.error = str(exc)
    except Exception as exc:
        log.warning("poll of mailbox %s failed: %s", mailbox_id, exc, exc_info=not _is_mail_error(exc))
        result.error = record_failure(mailbox, exc)
    finally:
        release_lease(mailbox_id, owner)
        result.seconds = time.monotonic() - started
    return result


def _is_mail_error(exc: BaseException) -> bool:
    from mailboxes.errors import MailError

    return isinstance(exc, MailError)


def _process_pending(mailbox: Mailbox, context, result: PollResult) -> None:
    """Rows a crashed run recorded but did not process: process them first (raw from storage)."""
    from tickets.intake import receive

    for row in inbound.pending(mailbox):
        row.mailbox, row.tenant = mailbox, mailbox.tenant
        result.count(receive(row, context=context).kind)
    context.flush()


def _select(client, mailbox: Mailbox, folder: str) -> dict:
    readonly = mailbox.after_import == AfterImport.KEEP
    return client.select_folder(folder, readonly=readonly)


def poll_folder(
    client, mailbox: Mailbox, folder: str, owner: str, context, result: PollResult, *, limit=None
) -> None:
    """Take the new mail of one folder into the ledger and process it."""
    info = _select(client, mailbox, folder)
    uidvalidity = int(info.get(b"UIDVALIDITY", 0) or 0)
    state, _ = FolderState.objects.get_or_create(
        mailbox=mailbox, folder=folder, defaults={"tenant": mailbox.tenant}
    )
    if state.uidvalidity != uidvalidity:
        if state.uidvalidity is not None:
            log.warning(
                "mailbox %s folder %s: UIDVALIDITY changed %s -> %s; resyncing",
                mailbox.pk,
                folder,
                state.uidvalidity,
                uidvalidity,
            )
        FolderState.objects.filter(pk=state.pk).update(uidvalidity=uidvalidity, last_uid=0)
        state.uidvalidity, state.last_uid = uidvalidity, 0

    poll_batches.apply_after_import(client, mailbox, folder, uidvalidity)

    criteria: list = ["UID", f"{state.last_uid + 1}:*"]
    if mailbox.import_since:
        criteria += ["SINCE", mailbox.import_since]
    if mailbox.header_filter and ":" in mailbox.header_filter:
        name, _, value = mailbox.header_filter.partition(":")
        criteria += ["HEADER", name.strip(), value.strip()]
    uids = sorted(u for u in client.search(criteria) if u > state.last_uid)
    if limit is not None:
        uids = uids[:limit]
    if not uids:
        return
    first_poll = state.last_uid == 0 and not state.history_until_uid
    sizes = {uid: d.get(b"RFC822.SIZE", 0) for uid, d in client.fetch(uids, ["RFC822.SIZE"]).items()}
    if first_poll:
        _count_history(mailbox, client, uids)
    for batch in _batches([u for u in uids if u in sizes], sizes):
        renew_lease(mailbox.pk, owner)
        poll_batches.take(client, mailbox, state, batch, sizes, context, result)


def _count_history(mailbox: Mailbox, client, uids: list[int]) -> None:
    """The progress bar: how many messages were already there when the mailbox was connected."""
    if not mailbox.connected_at:
        return
    dates = client.fetch(uids, ["INTERNALDATE"])
    total = sum(1 for d in dates.values() if _is_before(d.get(b"INTERNALDATE"), mailbox.connected_at))
    Mailbox.objects.filter(pk=mailbox.pk).update(history_total=F("history_total") + total)


def _is_before(internal: datetime | None, connected_at: datetime) -> bool:
    aware = poll_batches.aware(internal)
    return bool(aware and aware < connected_at.replace(microsecond=0))


def _batches(uids: list[int], sizes: dict[int, int]):
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        full = len(batch) >= BATCH_MESSAGES or total + size > BATCH_BYTES
        if batch and (full or size > LARGE_MESSAGE or total > LARGE_MESSAGE):  # big ones go alone
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


def status_counts(mailbox: Mailbox) -> dict[str, int]:
    """Ledger counts by status for the mailbox page."""
    from django.db.models import Count

    return dict(mailbox.inbound.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))


__all__ = [
    "PollResult",
    "due_mailbox_ids",
    "poll",
    "poll_folder",
    "status_counts",
    "wake",
]
