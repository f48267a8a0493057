"""Per-tenant sending caps (EmailSettings.hourly_send_cap / daily_send_cap): mail over a cap waits, never drops.

The windows roll: "hourly" means the last 60 minutes. Mail being sent right now counts too, so two senders
of one tenant cannot both use the last free place by much (each claims at most what is left). A cap of 0
means no limit. Connection tests do not count.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from mailboxes.models import EmailSettings, OutboundEmail, OutboundKind, OutboundStatus

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Allowance:
    """How many mails the tenant may start sending now; when none, from when and why."""

    remaining: int
    resume_at: datetime | None = None
    reason: str = ""

    @property
    def exhausted(self) -> bool:
        return self.remaining <= 0


UNLIMITED = 10**9


def _counted(tenant) -> QuerySet[OutboundEmail]:
    return OutboundEmail.objects.filter(tenant=tenant).exclude(kind=OutboundKind.TEST)


def _window(tenant, cap: int, length: timedelta, now: datetime) -> tuple[int, datetime | None]:
    """(places left, when the next place frees up) for one rolling window."""
    if not cap:
        return UNLIMITED, None
    since = now - length
    in_window = _counted(tenant).filter(
        Q(status=OutboundStatus.SENT, sent_at__gte=since) | Q(status=OutboundStatus.SENDING)
    )
    used = in_window.count()
    left = cap - used
    if left > 0:
        return left, None
    # The oldest `used - cap + 1` sent mails must leave the window before one more may go.
    over = used - cap
    sent_times = list(
        in_window.filter(status=OutboundStatus.SENT)
        .order_by("sent_at")
        .values_list("sent_at", flat=True)[over : over + 1]
    )
    resume = (sent_times[0] + length) if sent_times else now + timedelta(minutes=1)
    return left, resume


def allowance(tenant, now: datetime | None = None) -> Allowance:
    """What the tenant's caps allow right now."""
    now = now or timezone.now()
    caps = EmailSettings.for_tenant(tenant)
    hourly_left, hourly_resume = _window(tenant, caps.hourly_send_cap, HOUR, now)
    daily_left, daily_resume = _window(tenant, caps.daily_send_cap, DAY, now)
    remaining = min(hourly_left, daily_left)
    if remaining > 0:
        return Allowance(remaining)
    if daily_left <= 0:
        return Allowance(
            0, daily_resume, f"the workspace's limit of {caps.daily_send_cap} mails per 24 hours is reached"
        )
    return Allowance(
        0, hourly_resume, f"the workspace's limit of {caps.hourly_send_cap} mails per hour is reached"
    )


def hold(rows: QuerySet[OutboundEmail], limit: Allowance) -> int:
    """Defer due rows until the cap frees up (no attempt counted, nothing dropped); returns how many."""
    resume = limit.resume_at or timezone.now() + timedelta(minutes=1)
    # A little jitter so a whole held-back batch does not hit the provider in the same second.
    resume += timedelta(seconds=random.uniform(0, 30))
    when = timezone.localtime(resume).strftime("%H:%M %Z")
    return rows.filter(status__in=[OutboundStatus.QUEUED, OutboundStatus.DEFERRED]).update(
        status=OutboundStatus.DEFERRED,
        next_attempt_at=resume,
        error_message=f"Waiting: {limit.reason}. It goes out automatically around {when}.",
        error_advice="Nothing to do. Admins can raise the limit under Settings → Email.",
    )
