"""What became of a sending attempt, written on its outbox row: sent, deferred (with backoff), failed
(with the consequences for the ticket), uncertain.

Every write is conditional on the writer's claim (`status = sending` and its claim token), so a row taken
back by recovery is never overwritten by a late sender. These writes happen once or twice per mail, so
they are plain SQL built once per shape (`update_rows`), and a batch writes each "sent" together with the
next mail's final-dot mark (`Recorder`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from mailboxes import mime, sent_folder
from mailboxes.errors import MailError
from mailboxes.models import OutboundEmail, OutboundKind, OutboundStatus
from mailboxes.smtp_errors import DeliveryUncertain, RetriesExhausted

RETRY_WINDOW = timedelta(hours=settings.OUTBOUND_RETRY_HOURS)
BACKOFF_BASE = 60.0
BACKOFF_MAX = 3600.0
AGENT_KINDS = (OutboundKind.REPLY, OutboundKind.FORWARD)


@dataclass
class BatchResult:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    uncertain: int = 0
    held: int = 0
    ids: list[int] = field(default_factory=list)

    def add(self, status: str) -> None:
        setattr(self, status, getattr(self, status) + 1)


def backoff(attempts: int) -> timedelta:
    """Exponential (1, 2, 4 ... minutes, at most an hour) with jitter: half fixed, half random."""
    delay = min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_MAX)
    return timedelta(seconds=delay / 2 + random.uniform(0, delay / 2))


class _Mine:
    """Updates of a row we hold (our claim token, still `sending`) that also record its stored .eml."""

    def __init__(self, row: OutboundEmail, token: str) -> None:
        self.row = row
        self.token = token

    def update(self, **fields: Any) -> int:
        return update_rows(self.token, [(self.row, fields)])


def update_rows(token: str, items: list[tuple[OutboundEmail, dict[str, Any]]]) -> int:
    """One UPDATE for one or more rows held with ``token`` (each with its own values); returns rows changed.

    Plain SQL built once per shape: the ORM spent more CPU composing these than the database running them.
    Each row's stored .eml key is recorded along with whatever else is written.
    """
    for row, fields in items:
        if row.raw_key:
            fields.setdefault("raw_key", row.raw_key)
            fields.setdefault("size", row.size)
    names = tuple(sorted({name for _row, fields in items for name in fields}))
    shape = (len(items), names, tuple(tuple(sorted(f)) for _r, f in items))
    connection = connections[OutboundEmail.objects.db]
    sql = _SQL.get(shape)
    if sql is None:
        meta = OutboundEmail._meta
        quote = connection.ops.quote_name
        pk = quote("id")
        if len(items) == 1:
            assignments = ", ".join(f"{quote(meta.get_field(n).column)} = %s" for n in names)
        else:
            parts = []
            for name in names:
                column = quote(meta.get_field(name).column)
                whens = " ".join(f"WHEN {pk} = %s THEN %s" for _r, fields in items if name in fields)
                parts.append(f"{column} = CASE {whens} ELSE {column} END")
            assignments = ", ".join(parts)
        ids = ", ".join(["%s"] * len(items))
        where = f"{pk} IN ({ids}) AND {quote('status')} = %s AND {quote('claim_token')} = %s"
        # Table and column names come from the model; every value is a parameter.
        sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {where}"  # noqa: S608
        _SQL[shape] = sql
    adapt = connection.ops.adapt_datetimefield_value  # only str, int, None and datetimes are written here

    def value(v: Any) -> Any:
        return adapt(v) if isinstance(v, datetime) else v

    params: list[Any] = []
    if len(items) == 1:
        params = [value(items[0][1][n]) for n in names]
    else:
        for name in names:
            for row, fields in items:
                if name in fields:
                    params += [row.pk, value(fields[name])]
    params += [row.pk for row, _f in items] + [OutboundStatus.SENDING.value, token]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


_SQL: dict[tuple, str] = {}


def _mine(row: OutboundEmail, token: str) -> _Mine:
    return _Mine(row, token)


def _sent_fields(code: int, reply: str, refused: dict) -> dict[str, Any]:
    warning = ""
    if refused:
        warning = "Not delivered to " + "; ".join(
            f"{addr} ({code} {mime.clean_text(_text(text), 200)})" for addr, (code, text) in refused.items()
        )
    return {
        "status": OutboundStatus.SENT.value,
        "sent_at": timezone.now(),
        "smtp_code": code,
        "smtp_text": mime.clean_text(reply, 1000),
        "error_message": warning,
        "error_advice": "Check the addresses that were refused." if warning else "",
        "next_attempt_at": None,
        "claim_token": "",
    }


def record_sent(row: OutboundEmail, token: str, code: int, reply: str, refused: dict) -> bool:
    fields = _sent_fields(code, reply, refused)
    done = _mine(row, token).update(**fields)
    _after_sent(row, fields)
    return bool(done)


def _after_sent(row: OutboundEmail, fields: dict[str, Any]) -> None:
    row.status, row.sent_at = OutboundStatus.SENT, fields["sent_at"]
    if sent_folder.wants_sent_copy(row):
        sent_folder.enqueue_copy(row.pk)


class Recorder:
    """Writes a batch's "sent" results with the next mail's final-dot mark: one statement per mail.

    A "sent" waits at most until the next mail of the chunk reaches its final dot (or the chunk ends). If
    the worker dies in between, recovery finds that row with its mark set and calls it uncertain: the same
    answer as for a death while waiting for the server's reply, one mail wide.
    """

    def __init__(self) -> None:
        self.pending: tuple[OutboundEmail, str, dict[str, Any]] | None = None

    def sent(self, row: OutboundEmail, token: str, code: int, reply: str, refused: dict) -> None:
        self.flush()
        self.pending = (row, token, _sent_fields(code, reply, refused))

    def mark_final_dot(self, row: OutboundEmail, token: str) -> bool:
        """Mark ``row``'s final dot (and record the pending "sent"); False if the row is no longer ours."""
        mark = {"data_sent_at": timezone.now()}
        pending, self.pending = self.pending, None
        if pending is None or pending[1] != token:
            if pending is not None:
                self._write(pending)
            return bool(update_rows(token, [(row, mark)]))
        prev, _token, fields = pending
        changed = update_rows(token, [(prev, fields), (row, mark)])
        if changed == 2:
            _after_sent(prev, fields)
            return True
        # Rare: one of the two was taken back by recovery. Find out which.
        states = dict(
            OutboundEmail.objects.filter(pk__in=[prev.pk, row.pk]).values_list("pk", "data_sent_at")
        )
        if OutboundEmail.objects.filter(pk=prev.pk, status=OutboundStatus.SENT).exists():
            _after_sent(prev, fields)
        return (
            states.get(row.pk) is not None
            and OutboundEmail.objects.filter(
                pk=row.pk, status=OutboundStatus.SENDING, claim_token=token
            ).exists()
        )

    def flush(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            self._write(pending)

    @staticmethod
    def _write(pending: tuple[OutboundEmail, str, dict[str, Any]]) -> None:
        row, token, fields = pending
        update_rows(token, [(row, fields)])
        _after_sent(row, fields)


def record_deferred(row: OutboundEmail, token: str, error: MailError) -> str:
    now = timezone.now()
    started = row.first_attempt_at or now
    if now - started >= RETRY_WINDOW:
        hours = int(RETRY_WINDOW.total_seconds() // 3600)
        exhausted = RetriesExhausted(
            f"The mail could not be sent for {hours} hours ({row.attempts} attempts) and was given up. "
            f"Last problem: {error.message}",
            detail=error.detail,
            smtp_code=error.smtp_code,
        )
        return record_failed(row, token, exhausted)
    retry_at = now + backoff(row.attempts)
    _mine(row, token).update(
        status=OutboundStatus.DEFERRED,
        next_attempt_at=retry_at,
        smtp_code=error.smtp_code,
        smtp_text=mime.clean_text(error.detail, 1000),
        error_message=error.message,
        error_advice=error.advice,
        claim_token="",
    )
    row.status, row.next_attempt_at = OutboundStatus.DEFERRED, retry_at
    return OutboundStatus.DEFERRED


def record_failed(row: OutboundEmail, token: str, error: MailError) -> str:
    with transaction.atomic():
        done = _mine(row, token).update(
            status=OutboundStatus.FAILED,
            next_attempt_at=None,
            smtp_code=error.smtp_code,
            smtp_text=mime.clean_text(error.detail, 1000),
            error_message=error.message,
            error_advice=error.advice,
            claim_token="",
        )
        row.status = OutboundStatus.FAILED
        row.error_message, row.error_advice, row.smtp_code = error.message, error.advice, error.smtp_code
        row.smtp_text = mime.clean_text(error.detail, 1000)
        if done:
            _after_permanent_failure(row, error)
    return OutboundStatus.FAILED


def record_uncertain(row: OutboundEmail, token: str, detail: str) -> str:
    error = DeliveryUncertain(detail=detail)
    _mine(row, token).update(
        status=OutboundStatus.UNCERTAIN,
        error_message=error.message,
        error_advice=error.advice,
        smtp_code=None,
        smtp_text=mime.clean_text(detail, 1000),
        claim_token="",
    )
    row.status = OutboundStatus.UNCERTAIN
    return OutboundStatus.UNCERTAIN


def _after_permanent_failure(row: OutboundEmail, error: MailError) -> None:
    """An agent's mail that will not arrive: a note on the ticket, the ticket reopened, the agent told."""
    if row.kind not in AGENT_KINDS or row.ticket_id is None:
        return
    from tickets import replies

    replies.delivery_failed(row, error)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
