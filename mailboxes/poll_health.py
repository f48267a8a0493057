"""A mailbox's health after each poll: connected, or failing with a reason and advice, backing off
exponentially with jitter; an authentication failure hands over to the reconnect flow."""

from __future__ import annotations

import random
from datetime import timedelta

from django.db.models import F
from django.utils import timezone

from mailboxes.models import Health, Mailbox

MAX_BACKOFF_SECONDS = 3600
FAILING_AFTER = 2  # consecutive failures before the mailbox shows as failing


def backoff_seconds(interval: int, failures: int) -> float:
    """Exponential backoff from the poll interval, capped at an hour, with +-20 % jitter (no thundering herd)."""
    base = min(interval * (2 ** min(failures, 10)), MAX_BACKOFF_SECONDS)
    return base * random.uniform(0.8, 1.2)


def record_success(mailbox: Mailbox) -> None:
    now = timezone.now()
    Mailbox.objects.filter(pk=mailbox.pk).update(
        health=Health.CONNECTED,
        last_success_at=now,
        last_poll_at=now,
        consecutive_failures=0,
        last_error="",
        last_error_advice="",
        next_poll_at=now + timedelta(seconds=mailbox.poll_interval),
    )


def record_failure(mailbox: Mailbox, exc: BaseException) -> str:
    """Back off and show the failure on the mailbox; auth failures hand over to the reconnect flow."""
    from mailboxes.errors import MailError, NeedsReconnect, WrongCredentials

    now = timezone.now()
    failures = mailbox.consecutive_failures + 1
    message = getattr(exc, "message", "") or f"{type(exc).__name__}: {exc}"
    advice = getattr(exc, "advice", "") if isinstance(exc, MailError) else "We will try again automatically."
    if isinstance(exc, NeedsReconnect | WrongCredentials):
        health = Health.NEEDS_RECONNECT
    elif failures >= FAILING_AFTER:
        health = Health.FAILING
    else:
        health = mailbox.health if mailbox.health != Health.PENDING else Health.FAILING
    delay = backoff_seconds(mailbox.poll_interval, failures)
    Mailbox.objects.filter(pk=mailbox.pk).update(
        health=health,
        last_poll_at=now,
        last_error=message[:2000],
        last_error_advice=advice[:2000],
        last_error_at=now,
        consecutive_failures=F("consecutive_failures") + 1,
        next_poll_at=now + timedelta(seconds=delay),
    )
    return message
