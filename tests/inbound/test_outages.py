"""When the database or the file storage fails, that is not the mail's fault: the poll fails and backs off,
the mail stays stored and the next poll takes it, and nothing is quarantined or deleted from the server.
A mail whose own raw bytes are gone is different: it is quarantined with that reason."""

from __future__ import annotations

import threading

import psycopg
import pytest
from django.db import connection

from mailboxes import blobs, inbound, polling
from mailboxes.models import InboundMessage, InboundStatus, Mailbox
from tests.inbound.conftest import build_mail, make_mailbox, reset_storages, s3_storages
from tickets import intake
from tickets.models import Ticket, TicketCounter

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def support(tenant, dovecot, s3_storage):
    return make_mailbox(tenant, dovecot, after_import="delete")


def _dsn() -> str:
    params = connection.get_connection_params()
    return psycopg.conninfo.make_conninfo(
        **{k: v for k, v in params.items() if k not in ("context", "cursor_factory", "prepare_threshold")}
    )


def test_a_lock_timeout_leaves_the_mail_stored_for_the_next_poll(support, dovecot, tenant):
    """Another connection holds the ticket counter: intake's lock times out (a real PostgreSQL error)."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's lock timeout is the failure under test")
    TicketCounter.objects.create(tenant=tenant, last_number=1000)
    dovecot.append(support.email, build_mail(subject="Printer on fire"))
    holding, release = threading.Event(), threading.Event()

    def hold_the_counter() -> None:
        with psycopg.connect(_dsn()) as other, other.transaction():
            other.execute("SELECT 1 FROM tickets_ticketcounter WHERE tenant_id = %s FOR UPDATE", [tenant.pk])
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_counter)
    holder.start()
    try:
        assert holding.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        first = polling.poll(support.pk)
    finally:
        release.set()
        holder.join()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")

    assert "lock" in first.error.lower(), first
    row = InboundMessage.objects.get(mailbox=support)
    assert row.status == InboundStatus.STORED  # not quarantined: the database failed, not the mail
    assert Mailbox.objects.get(pk=support.pk).consecutive_failures == 1
    assert len(dovecot.fetch_all(support.email)) == 1  # and still on the server

    Mailbox.objects.filter(pk=support.pk).update(next_poll_at=None)
    second = polling.poll(support.pk)

    assert second.error == "" and second.new_tickets == 1, second
    assert Ticket.objects.filter(tenant=tenant).count() == 1
    assert len(dovecot.fetch_all(support.email)) == 0  # deleted once committed


def test_storage_out_of_reach_fails_the_poll_and_quarantines_nothing(support, dovecot, settings, s3_server):
    raw = build_mail(subject="Stored before the outage")
    row = inbound.record_raw(raw, mailbox=support)  # a crashed run stored it but did not process it
    settings.STORAGES = s3_storages(s3_server, "no-such-bucket-here")  # every read and write now fails
    reset_storages()

    result = polling.poll(support.pk)

    assert "file storage could not" in result.error, result
    row.refresh_from_db()
    assert row.status == InboundStatus.STORED
    assert not InboundMessage.objects.filter(status=InboundStatus.QUARANTINED).exists()


def test_a_mail_whose_raw_bytes_are_gone_is_quarantined_with_that_reason(support):
    raw = build_mail(subject="Lost in storage")
    row = inbound.record_raw(raw, mailbox=support)
    blobs.delete(row.raw_key)

    outcome = intake.receive(row)

    assert outcome.kind == "quarantined"
    assert outcome.reason == "the raw message is missing from storage"
    row.refresh_from_db()
    assert row.status == InboundStatus.QUARANTINED
