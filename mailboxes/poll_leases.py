"""A mailbox's poll lease: one poller at a time, taken over when its holder's lease expired or its process
died (a conditional UPDATE decides, so two pollers racing cannot both win)."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from mailboxes.models import Mailbox

log = logging.getLogger(__name__)

LEASE_SECONDS = 120


class LeaseLost(Exception):
    """Another poller took the mailbox over (our lease expired): stop without touching anything else."""


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_is_dead_local(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire_lease(mailbox_id: int, owner: str, seconds: int = LEASE_SECONDS) -> bool:
    """Take the mailbox's poll lease if it is free, expired, ours, or held by a dead process on this host."""
    now = timezone.now()
    until = now + timedelta(seconds=seconds)
    free = Q(poll_lease_until__isnull=True) | Q(poll_lease_until__lt=now) | Q(poll_lease_owner=owner)
    if (
        Mailbox.objects.filter(pk=mailbox_id)
        .filter(free)
        .update(poll_lease_until=until, poll_lease_owner=owner)
    ):
        return True
    current = Mailbox.objects.filter(pk=mailbox_id).values_list("poll_lease_owner", flat=True).first()
    if current and _owner_is_dead_local(current):
        log.info("mailbox %s: taking over the lease of dead poller %s", mailbox_id, current)
        return bool(
            Mailbox.objects.filter(pk=mailbox_id, poll_lease_owner=current).update(
                poll_lease_until=until, poll_lease_owner=owner
            )
        )
    return False


def renew_lease(mailbox_id: int, owner: str, seconds: int = LEASE_SECONDS) -> None:
    until = timezone.now() + timedelta(seconds=seconds)
    if not Mailbox.objects.filter(pk=mailbox_id, poll_lease_owner=owner).update(poll_lease_until=until):
        raise LeaseLost(f"mailbox {mailbox_id}: lease lost")


def release_lease(mailbox_id: int, owner: str) -> None:
    Mailbox.objects.filter(pk=mailbox_id, poll_lease_owner=owner).update(
        poll_lease_until=None, poll_lease_owner=""
    )
