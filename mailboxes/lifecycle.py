"""A mailbox's life: created (by hand, by OAuth, by the CLI), copied, made default, disabled, deleted.

The connection test runs after every create and every change of connection details; `schedule_test` queues
it after the surrounding transaction commits (the task takes the test's id).
"""

from __future__ import annotations

import logging
import re

from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant, User
from mailboxes.models import ConnectionTest, Health, Mailbox

logger = logging.getLogger(__name__)

KEEP_TESTS = 20  # connection tests kept per mailbox (the latest is shown; older ones only help debugging)
SECRET_FIELDS = ("imap_password", "smtp_password", "oauth_access_token", "oauth_refresh_token")


def unique_key(tenant: Tenant, address: str, *, exclude_pk: int | None = None) -> str:
    """A short key (at most 5 letters/digits) for a new mailbox, not yet used in the tenant: SUPPO, SUPP2, ..."""
    local = address.split("@")[0]
    base = (re.sub(r"[^A-Za-z0-9]", "", local).upper() or "MBX")[:5]
    taken = set(Mailbox.objects.filter(tenant=tenant).exclude(pk=exclude_pk).values_list("key", flat=True))
    taken = {k.upper() for k in taken}
    if base not in taken:
        return base
    for n in range(2, 1000):
        suffix = str(n)
        candidate = base[: 5 - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
    return base  # 1000 mailboxes sharing a prefix: the form will ask for a key


def schedule_test(
    mailbox: Mailbox, *, reason: str, requested_by: User | None = None, also_send_to: str = ""
) -> ConnectionTest:
    """Record a queued connection test and start it (a Celery task) once the current transaction commits."""
    from mailboxes.tasks import run_connection_test

    test = ConnectionTest.objects.create(
        tenant=mailbox.tenant,
        mailbox=mailbox,
        reason=reason,
        requested_by=requested_by,
        also_send_to=also_send_to,
    )
    transaction.on_commit(lambda: run_connection_test.delay(test.pk))
    keep = ConnectionTest.objects.filter(mailbox=mailbox).order_by("-created_at").values("pk")[:KEEP_TESTS]
    ConnectionTest.objects.filter(mailbox=mailbox).exclude(pk__in=keep).delete()
    return test


def connection_changed(before: dict, mailbox: Mailbox) -> bool:
    """Whether any connection field differs from the snapshot `before` (see `connection_snapshot`)."""
    return before != connection_snapshot(mailbox)


def connection_snapshot(mailbox: Mailbox) -> dict:
    return {name: str(getattr(mailbox, name)) for name in Mailbox.CONNECTION_FIELDS}


@transaction.atomic
def set_default(mailbox: Mailbox) -> None:
    """Make `mailbox` the tenant's default sending account (the only one)."""
    Mailbox.objects.filter(tenant=mailbox.tenant, is_default=True).exclude(pk=mailbox.pk).update(
        is_default=False
    )
    Mailbox.objects.filter(pk=mailbox.pk).update(is_default=True)
    mailbox.is_default = True


def set_active(mailbox: Mailbox, active: bool) -> None:
    """Disable (no polling, no sending) or enable again; enabling re-tests the connection."""
    if active:
        Mailbox.objects.filter(pk=mailbox.pk).update(is_active=True, health=Health.PENDING, next_poll_at=None)
    else:
        Mailbox.objects.filter(pk=mailbox.pk).update(is_active=False, health=Health.DISABLED)
    mailbox.refresh_from_db()


def copy_settings(source: Mailbox, *, email: str, name: str, key: str) -> Mailbox:
    """An unsaved mailbox with `source`'s servers and settings for another address (no secrets, no state)."""
    skip = {
        "id",
        "tenant",
        "email",
        "name",
        "key",
        "is_default",
        "created_at",
        "updated_at",
        "health",
        "connected_at",
        "oauth_expires_at",
        "oauth_scope",
        "oauth_refresh_lease_until",
        "reconnect_notified_at",
        "detected_folders",
        *SECRET_FIELDS,
    }
    skip |= {
        f.name for f in Mailbox._meta.fields if f.name.startswith(("last_", "poll_", "next_", "history_"))
    }
    skip |= {"consecutive_failures", "messages_imported", "messages_quarantined"}
    copy = Mailbox(tenant=source.tenant, email=email, name=name, key=key)
    for f in Mailbox._meta.concrete_fields:
        if f.name not in skip:
            setattr(copy, f.attname, getattr(source, f.attname))
    old_local = source.email.split("@")[0]
    for field in ("imap_username", "smtp_username"):
        value = getattr(copy, field)
        if value.lower() == source.email.lower():
            setattr(copy, field, email)
        elif value and value == old_local:
            setattr(copy, field, email.split("@")[0])
    return copy


def delete_mailbox(mailbox: Mailbox) -> None:
    """Revoke the OAuth token at the provider, wipe the secrets and delete the account.

    Tickets and the inbound/outbound logs stay (their mailbox link becomes empty); polling stops because
    the row is gone.
    """
    from mailboxes import oauth

    if mailbox.is_oauth and mailbox.provider in oauth.provider_names():
        try:
            oauth.revoke_token(oauth.provider_config(mailbox.provider, mailbox.tenant), mailbox=mailbox)
        except Exception:  # revocation is best effort; the secrets are wiped below either way
            logger.warning("Revoking the token of mailbox %s failed", mailbox.pk, exc_info=True)
    with transaction.atomic():
        Mailbox.objects.filter(pk=mailbox.pk).update(
            **dict.fromkeys(SECRET_FIELDS, ""), is_active=False, health=Health.DISABLED
        )
        mailbox.delete()
    logger.info("Mailbox deleted at %s", timezone.now().isoformat())
