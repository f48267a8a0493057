"""Fixtures of the outbound tests: a support mailbox on the rig's aiosmtpd (or Postfix), a ticket, a contact."""

from __future__ import annotations

import itertools

import pytest
from django.utils import timezone

from mailboxes.models import Mailbox
from tests.conftest import make_member
from tests.mailboxes.conftest import oauth_providers, private_ok  # noqa: F401 - fixtures used here too
from tickets.models import Contact, Message, MessageKind, Participant, Queue, Ticket

_n = itertools.count(1)


@pytest.fixture
def rig_ca(settings, rig_tls):
    """Mail servers of the rig present certificates of the rig's CA: trust it like a company CA."""
    settings.MAILBOX_CA_FILE = str(rig_tls.ca_path)
    return rig_tls.ca_path


def smtp_mailbox_for(
    tenant, smtp, *, security: str = "starttls", email: str = "support@acme.test", **fields
) -> Mailbox:
    port = {"starttls": smtp.starttls_port, "ssl": smtp.tls_port, "none": smtp.plain_port}[security]
    password = smtp.add_user(email)
    n = next(_n)
    values = {
        "tenant": tenant,
        "name": "Acme Support",
        "key": f"S{n}",
        "email": email,
        "sender_name": "Acme Support",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": security,
        "smtp_same_credentials": False,
        "smtp_username": email,
        "smtp_password": password,
        "allow_private_hosts": True,
        "connect_timeout": 10,
        "save_to_sent": False,
    }
    values.update(fields)
    return Mailbox.objects.create(**values)


@pytest.fixture
def mailbox(tenant, smtp, rig_ca) -> Mailbox:
    """The tenant's support mailbox, sending through the rig's aiosmtpd (STARTTLS, password)."""
    return smtp_mailbox_for(tenant, smtp, is_default=True)


@pytest.fixture
def support_queue(tenant) -> Queue:
    return Queue.objects.create(tenant=tenant, name="Support")


@pytest.fixture
def contact(tenant) -> Contact:
    return Contact.objects.create(tenant=tenant, email="dana@customer.test", name="Dana Customer")


def make_ticket(
    tenant,
    mailbox,
    contact,
    *,
    title="Printer does not print",
    body="It says paper jam.",
    queue=None,
    assignee=None,
) -> Ticket:
    """A ticket opened by the contact's mail, with that inbound message in the thread."""
    from tickets.models import TicketCounter

    now = timezone.now()
    ticket = Ticket.objects.create(
        tenant=tenant,
        number=TicketCounter.next_number(tenant),
        title=title,
        mailbox=mailbox,
        queue=queue,
        requester=contact,
        assignee=assignee,
        created_at=now,
    )
    Participant.objects.create(tenant=tenant, ticket=ticket, contact=contact)
    Message.objects.create(
        tenant=tenant,
        ticket=ticket,
        kind=MessageKind.INBOUND,
        contact=contact,
        from_addr=contact.email,
        from_name=contact.name,
        to=[mailbox.email],
        subject=title,
        text=body,
        message_id=f"<orig-{next(_n)}@customer.test>",
        references=["<older-1@customer.test>"],
        created_at=now,
    )
    return ticket


@pytest.fixture
def ticket(tenant, mailbox, contact, support_queue) -> Ticket:
    return make_ticket(tenant, mailbox, contact, queue=support_queue)


@pytest.fixture
def agent(tenant):
    user = make_member(tenant, "agnes@acme.test", "agent", "Agnes Agent")
    user.phone = "+1 555 0100"
    user.signature = "{{ agent.name }} · {{ agent.phone }}\n{{ tenant.name }}"
    user.save()
    return user


def worker_env() -> dict[str, str]:
    """Environment for a worker subprocess on this test's database (and the same storage folder)."""
    import os

    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.skip("worker subprocess tests need PostgreSQL (the rig provides it)")
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    url = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        "DATABASE_URL": url,
        "HELPDESK_TESTING": "1",
        "SECRET_KEY": settings.SECRET_KEY,
        "DJANGO_SETTINGS_MODULE": "helpdesk.settings",
        "CELERY_TASK_ALWAYS_EAGER": "1",
    }


WORKER = "import django; django.setup(); from mailboxes import outbound; outbound.send_batch({mailbox_id})"


@pytest.fixture(scope="session")
def outbound_bucket(s3_server) -> str:
    return s3_server.new_bucket("outbound")


@pytest.fixture
def s3_storage(settings, s3_server, outbound_bucket):
    """Django's default storage is the rig's SeaweedFS (S3) for this test: attachments and .eml go there."""
    from tests.inbound.conftest import reset_storages, s3_storages

    settings.STORAGES = s3_storages(s3_server, outbound_bucket)
    reset_storages()
    yield s3_server
    reset_storages()
