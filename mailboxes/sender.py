"""The sender: claims due outbox rows of one mailbox in chunks and hands each to the SMTP server over one
reused connection (`submission.Link`), recording every outcome (`outcomes`).

Per row: build the .eml (or reopen the stored one), store it, MAIL/RCPT/DATA, mark the final dot
(conditional on the claim), the final dot, the reply. The per-tenant caps (`sendlimits`) are checked before
each chunk is claimed; mail over a cap is held back, never dropped.
"""

from __future__ import annotations

import io
import logging
import secrets
import smtplib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import IO

from django.conf import settings
from django.core.files.storage import storages
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from mailboxes import blobs, mime, outcomes, sendlimits, submission
from mailboxes.errors import MailError
from mailboxes.models import Mailbox, OutboundEmail, OutboundStatus
from mailboxes.outcomes import BatchResult
from mailboxes.smtp_errors import AttachmentMissing, NoRecipient, classify_send, too_large, where_for

log = logging.getLogger(__name__)

CHUNK = 50  # rows claimed at a time by a batch (the lease is refreshed while it works through them)
LEASE = timedelta(seconds=settings.OUTBOUND_SENDING_LEASE_SECONDS)


def due_q(now: datetime) -> Q:
    """Rows a sender may claim now: queued, or deferred whose retry time has come."""
    retry_time = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    return Q(status=OutboundStatus.QUEUED) | (Q(status=OutboundStatus.DEFERRED) & retry_time)


class _Uploads:
    """Stores built .eml files; on S3 in the background while the sender talks SMTP (a PUT is a network
    round trip per mail). The upload is settled before the row's next database update records the key.
    On a local file system writing directly is faster: a helper thread only competes for the GIL."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self.background = hasattr(storages["default"], "bucket_name")

    def submit(self, data: bytes, sha256: str) -> Future:
        if not self.background:
            done: Future = Future()
            try:
                done.set_result(blobs.put(data, sha256=sha256))
            except Exception as exc:
                done.set_exception(exc)
            return done
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="outbound-eml")
        return self._pool.submit(blobs.put, data, sha256=sha256)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class StorageFailed(Exception):
    """The .eml could not be stored; the message is abandoned before the final dot and retried later."""


@dataclass
class _Prepared:
    data: IO[bytes] | None = None
    size: int = 0
    error: Exception | None = None
    upload: Future | None = None
    key: str = ""

    def settle(self, row: OutboundEmail) -> None:
        """Wait for the background upload; then the row records its key with its next update."""
        upload, self.upload = self.upload, None
        if upload is None:
            return
        try:
            upload.result()
        except Exception as exc:
            raise StorageFailed(str(exc)) from exc
        row.raw_key, row.size = self.key, self.size

    def settle_quietly(self, row: OutboundEmail) -> None:
        try:
            self.settle(row)
        except StorageFailed:
            log.exception("the .eml of outbound %s could not be stored", row.pk)


def _prepare(row: OutboundEmail, uploads: _Uploads) -> _Prepared:
    """The row's .eml: read back from storage when a former attempt stored it, else built now and stored
    (in the background when it fits in memory). Problems come back as `error`, not raised."""
    try:
        if row.raw_key:
            try:
                return _Prepared(blobs.open_blob(row.raw_key), row.size)
            except FileNotFoundError:
                log.warning("the .eml of outbound %s is missing from storage; building it again", row.pk)
                row.raw_key = ""
        built = mime.build(row)
        key = blobs.key_for(built.sha256)
        if built.size <= mime.SPOOL_IN_MEMORY:
            data = built.file.read()
            built.file.close()
            return _Prepared(io.BytesIO(data), built.size, upload=uploads.submit(data, built.sha256), key=key)
        try:
            blobs.put_file(built.file, sha256=built.sha256)
        except BaseException:
            built.file.close()
            raise
        row.raw_key, row.size = key, built.size
        built.file.seek(0)
        return _Prepared(built.file, built.size)
    except Exception as exc:
        return _Prepared(error=exc)


def _deliver(
    row: OutboundEmail,
    token: str,
    link: submission.Link,
    prepared: _Prepared,
    recorder: outcomes.Recorder,
    result: BatchResult,
) -> str:
    """Send one claimed, prepared row over the link. Returns its new status, or IN_FLIGHT when the answer
    to its final dot is still to be read (`link.settle()` records it and counts it in ``result``)."""
    if prepared.error is not None or prepared.data is None:
        exc = prepared.error
        if isinstance(exc, AttachmentMissing):
            return outcomes.record_failed(row, token, exc)
        if isinstance(exc, MailError):
            record = outcomes.record_deferred if exc.temporary else outcomes.record_failed
            return record(row, token, exc)
        log.error("could not prepare outbound %s: %r", row.pk, exc)  # storage trouble (S3 down): later
        return outcomes.record_deferred(row, token, _storage_trouble(exc))
    with prepared.data as data:
        outcome = _transmit_row(row, token, link, prepared, data, recorder, result)
    prepared.settle_quietly(row)  # the outcome paths below record the key with the status
    return outcome()


IN_FLIGHT = "in_flight"


def _storage_trouble(exc: BaseException) -> MailError:
    return MailError(
        "The message could not be stored before sending.",
        "Nothing to do: it will be tried again. If it keeps happening, the file storage may be down.",
        detail=str(exc),
        temporary=True,
    )


def _transmit_row(
    row: OutboundEmail,
    token: str,
    link: submission.Link,
    prepared: _Prepared,
    data: IO[bytes],
    recorder: outcomes.Recorder,
    result: BatchResult,
):
    """SMTP for one row; returns a callable that records the outcome (after the upload has settled)."""
    size = prepared.size
    recipients = mime.recipients_of(row)
    if not recipients:
        return partial(outcomes.record_failed, row, token, NoRecipient())

    def mark_final_dot() -> bool:
        prepared.settle(row)  # the key must be stored before the row says "the server has it"
        return recorder.mark_final_dot(row, token)

    for attempt in (1, 2):
        try:
            conn = link.get()
        except MailError as exc:
            link.close()
            record = outcomes.record_deferred if exc.temporary else outcomes.record_failed
            return partial(record, row, token, exc)
        limit = link.size_limit()
        if limit and size > limit:
            link.settle()
            return partial(outcomes.record_failed, row, token, too_large(None, "", limit, size))
        try:
            flight = submission.transmit(
                conn,
                row.mailbox.email,
                recipients,
                data,
                size,
                before_final_dot=mark_final_dot,
                settle_previous=link.settle,
            )
            break
        except submission.PreviousBrokeLink:
            link.close()  # not this mail's fault: nothing of it was sent yet; once more on a new connection
            data.seek(0)
            if attempt == 2:
                return partial(outcomes.record_deferred, row, token, _connection_lost())
        except (
            StorageFailed,
            submission.Abandoned,
            submission.ReplyLost,
            smtplib.SMTPException,
            OSError,
        ) as exc:
            return _failure(row, token, link, exc, limit, size)
    # The answer to the final dot is read when the next mail's commands are out (or at the end).
    link.pending = partial(_settle_reply, row, token, flight, link, recorder, result, limit, size)
    return lambda: IN_FLIGHT


def _connection_lost() -> MailError:
    from mailboxes.errors import ConnectionLost

    return ConnectionLost("The server closed the connection before this mail could be sent.")


def _failure(row: OutboundEmail, token: str, link: submission.Link, exc: BaseException, limit, size: int):
    """The outcome of a transmission that raised, as a callable (run after the upload settled)."""
    if isinstance(exc, StorageFailed):
        link.close()  # the server drops the unterminated message
        return partial(outcomes.record_deferred, row, token, _storage_trouble(exc))
    if isinstance(exc, submission.Abandoned):
        link.close()
        log.warning("outbound %s was taken back by recovery before completion; not completed", row.pk)
        return lambda: "abandoned"
    if isinstance(exc, submission.ReplyLost):
        link.close()
        return partial(outcomes.record_uncertain, row, token, str(exc))
    # SMTPException is an OSError too: only a disconnect or a socket error means the session is gone.
    socket_error = isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException)
    if not link.usable() or socket_error or isinstance(exc, smtplib.SMTPServerDisconnected):
        link.close()
    else:
        link.settle()
    error = classify_send(exc, where_for(row.mailbox), size_limit=limit, size=size)
    return partial(outcomes.record_deferred if error.temporary else outcomes.record_failed, row, token, error)


def _settle_reply(
    row: OutboundEmail,
    token: str,
    flight: submission.InFlight,
    link: submission.Link,
    recorder: outcomes.Recorder,
    result: BatchResult,
    limit: int | None,
    size: int,
) -> None:
    """Read the server's answer to the row's final dot and record it."""
    try:
        code, reply = flight.reply()
    except submission.ReplyLost as exc:
        flight.conn.close()  # the session is gone; the link notices on its next use
        status = outcomes.record_uncertain(row, token, str(exc))
    except smtplib.SMTPException as exc:
        error = classify_send(exc, where_for(row.mailbox), size_limit=limit, size=size)
        record = outcomes.record_deferred if error.temporary else outcomes.record_failed
        status = record(row, token, error)
    else:
        recorder.sent(row, token, code, reply, flight.refused)
        status = OutboundStatus.SENT
    result.add(status)
    result.ids.append(row.pk)


def claim(ids: Sequence[int], token: str, now: datetime) -> list[OutboundEmail]:
    """Claim the due rows among ``ids`` for this run; returns the rows we got, oldest first."""
    OutboundEmail.objects.filter(pk__in=list(ids)).filter(due_q(now)).update(
        status=OutboundStatus.SENDING,
        claim_token=token,
        claimed_at=now,
        attempts=F("attempts") + 1,
        last_attempt_at=now,
        first_attempt_at=Coalesce(F("first_attempt_at"), Value(now)),
        data_sent_at=None,
    )
    # No select_related: the batch sets `row.mailbox` itself and nothing on the way needs the tenant.
    return list(OutboundEmail.objects.filter(claim_token=token, status=OutboundStatus.SENDING).order_by("pk"))


def due_for(mailbox: Mailbox, now: datetime):
    return OutboundEmail.objects.filter(mailbox=mailbox).filter(due_q(now))


def send_rows(mailbox: Mailbox, pick: Callable[[int], list[int]], result: BatchResult) -> None:
    link = submission.Link(mailbox)
    uploads = _Uploads()
    recorder = outcomes.Recorder()
    try:
        while True:
            now = timezone.now()
            limit = sendlimits.allowance(mailbox.tenant, now)
            if limit.exhausted:
                ids = pick(10**6)
                if ids:
                    result.held += sendlimits.hold(OutboundEmail.objects.filter(pk__in=ids), limit)
                return
            ids = pick(min(CHUNK, limit.remaining))
            if not ids:
                return
            token = secrets.token_hex(16)
            rows = claim(ids, token, now)
            if not rows:
                return
            touched = now
            for row in rows:
                row.mailbox = mailbox
            for row in rows:
                if timezone.now() - touched > LEASE / 3:  # a slow batch keeps its claim alive
                    touched = timezone.now()
                    OutboundEmail.objects.filter(claim_token=token, status=OutboundStatus.SENDING).update(
                        claimed_at=touched
                    )
                status = _deliver(row, token, link, _prepare(row, uploads), recorder, result)
                if status in ("sent", "deferred", "failed", "uncertain"):
                    result.add(status)
                    result.ids.append(row.pk)
            link.settle()  # the chunk's last answer, then its last "sent", before the next chunk counts caps
            recorder.flush()
    finally:
        link.close()  # reads a last answer still in flight
        recorder.flush()
        uploads.close()
