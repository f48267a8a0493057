"""Fixtures of the inbound tests: S3 storage from the rig, a support mailbox on the rig's Dovecot, mail builders."""

from __future__ import annotations

import itertools
import os
import uuid
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from django.core.files import storage as storage_module
from django.utils import timezone
from django.utils.functional import empty

from mailboxes.models import Mailbox
from tickets.models import Queue

_counter = itertools.count(1)


def reset_storages() -> None:
    """Forget cached storage objects so a changed STORAGES setting takes effect."""
    storage_module.storages._storages.clear()
    storage_module.default_storage._wrapped = empty


def s3_storages(server, bucket: str) -> dict:
    return {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "endpoint_url": server.endpoint_url,
                "access_key": server.access_key,
                "secret_key": server.secret_key,
                "bucket_name": bucket,
                "region_name": server.region,
                "addressing_style": "path",
                "signature_version": "s3v4",
                "default_acl": None,
                "file_overwrite": True,
            },
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(scope="session")
def inbound_bucket(s3_server) -> str:
    return s3_server.new_bucket("inbound")


@pytest.fixture
def s3_storage(settings, s3_server, inbound_bucket):
    """Django's default storage is the rig's SeaweedFS bucket for this test."""
    settings.STORAGES = s3_storages(s3_server, inbound_bucket)
    reset_storages()
    yield s3_server
    reset_storages()


def s3_env(s3, bucket: str) -> dict[str, str]:
    return {**s3.env(), "S3_BUCKET": bucket}


@pytest.fixture
def queue(tenant) -> Queue:
    return Queue.objects.create(tenant=tenant, name="Support")


def make_mailbox(tenant, dovecot=None, *, email: str | None = None, **fields) -> Mailbox:
    """A mailbox on the rig's Dovecot (a fresh IMAP user unless `email` names one) or offline for import_eml."""
    n = next(_counter)
    email = email or f"support{n}-{uuid.uuid4().hex[:6]}@example.test"
    values = {
        "tenant": tenant,
        "name": f"Support {n}",
        "key": f"S{n % 10000}",
        "email": email,
        "poll_interval": 5,
        "allow_private_hosts": True,
        "connected_at": timezone.now(),
    }
    if dovecot is not None:
        password = dovecot.add_user(email)
        values.update(
            imap_host=dovecot.host,
            imap_port=dovecot.imap_port,
            imap_security="none",
            imap_username=email,
            imap_password=password,
        )
    values.update(fields)
    return Mailbox.objects.create(**values)


def build_mail(
    *,
    sender: str = "Jane Customer <jane@customer.test>",
    to: str = "support@example.test",
    subject: str = "Printer on fire",
    body: str = "Hello, it is on fire.",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict[str, str] | None = None,
    attachments: list[tuple[str, str, bytes]] = (),
    html: str | None = None,
    with_message_id: bool = True,
) -> bytes:
    """A realistic raw message (bytes, CRLF)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(timezone.now())
    if with_message_id:
        msg["Message-ID"] = message_id or make_msgid(domain="customer.test")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html")
    for filename, ctype, payload in attachments:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def worker_env(s3_server, bucket: str) -> dict[str, str]:
    """Environment for a worker subprocess using this test's database and S3 bucket."""
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.skip("worker subprocess tests need PostgreSQL (the rig provides it)")
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    url = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        **s3_env(s3_server, bucket),
        "DATABASE_URL": url,
        "HELPDESK_TESTING": "1",
        "SECRET_KEY": settings.SECRET_KEY,
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


MANAGE = Path(__file__).resolve().parents[2] / "manage.py"
