"""The quarantine pages: admins see, download, reprocess and discard; agents get 403, outsiders 404."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.access import tenant_reverse
from mailboxes import inbound
from mailboxes.models import InboundMessage
from tests.inbound.conftest import build_mail, make_mailbox, reset_storages, s3_storages
from tickets import intake, quarantine
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def quarantined(tenant, s3_storage):
    mailbox = make_mailbox(tenant)
    raw = build_mail(subject="Buy cheap stuff", headers={"X-Spam-Flag": "YES"})
    row = inbound.record_raw(raw, mailbox=mailbox)
    outcome = intake.receive(row, raw)
    assert outcome.kind == "quarantined"
    row.refresh_from_db()
    return row


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_admin_sees_the_quarantine_list_and_detail(admin, tenant, quarantined, django_assert_max_num_queries):
    client = login(admin)
    with django_assert_max_num_queries(12):
        page = client.get(tenant_reverse(tenant, "quarantine:list"))
    assert page.status_code == 200
    assert b"Buy cheap stuff" in page.content and b"spam" in page.content
    detail = client.get(tenant_reverse(tenant, "quarantine:detail", quarantined.pk))
    assert detail.status_code == 200
    assert b"X-Spam-Flag: YES" in detail.content  # the raw headers
    assert b"Processing trace" in detail.content
    raw = client.get(tenant_reverse(tenant, "quarantine:download", quarantined.pk))
    assert raw.status_code == 200 and raw["Content-Type"] == "message/rfc822"
    assert b"Subject: Buy cheap stuff" in b"".join(raw.streaming_content)


def test_discard_and_reprocess(admin, tenant, quarantined):
    client = login(admin)
    response = client.post(tenant_reverse(tenant, "quarantine:reprocess", quarantined.pk))
    assert response.status_code == 302
    quarantined.refresh_from_db()
    assert quarantined.status == "quarantined"  # still spam: reprocessing is idempotent
    assert not Ticket.objects.exists()
    client.post(tenant_reverse(tenant, "quarantine:discard", quarantined.pk))
    quarantined.refresh_from_db()
    assert quarantined.status == "discarded"
    assert b"Buy cheap stuff" not in client.get(tenant_reverse(tenant, "quarantine:list")).content


def test_reprocess_after_a_fix_creates_the_ticket_once(admin, tenant, s3_storage):
    mailbox = make_mailbox(tenant)
    raw = build_mail(subject="Was broken")
    row = inbound.record_raw(raw, mailbox=mailbox)
    quarantine.quarantine(row, "processing failed: simulated")
    client = login(admin)
    client.post(tenant_reverse(tenant, "quarantine:reprocess", row.pk))
    client.post(tenant_reverse(tenant, "quarantine:reprocess", row.pk))
    row.refresh_from_db()
    assert row.status == "processed"
    assert Ticket.objects.filter(title="Was broken").count() == 1


def test_agents_get_403_and_outsiders_404(agent, outsider, tenant, quarantined):
    url = tenant_reverse(tenant, "quarantine:detail", quarantined.pk)
    assert login(agent).get(url).status_code == 403
    assert login(agent).post(tenant_reverse(tenant, "quarantine:discard", quarantined.pk)).status_code == 403
    assert login(outsider).get(url).status_code == 404
    assert login(outsider).get(tenant_reverse(tenant, "quarantine:list")).status_code == 404
    assert InboundMessage.objects.get(pk=quarantined.pk).status == "quarantined"


def test_another_tenants_message_is_404_for_an_admin(admin, tenant, other_tenant, s3_storage):
    theirs = make_mailbox(other_tenant)
    row = inbound.record_raw(build_mail(), mailbox=theirs)
    quarantine.quarantine(row, "test")
    response = login(admin).get(tenant_reverse(tenant, "quarantine:detail", row.pk))
    assert response.status_code == 404


def test_reprocess_while_storage_is_out_of_reach_changes_nothing(
    admin, tenant, quarantined, settings, s3_server
):
    settings.STORAGES = s3_storages(s3_server, "no-such-bucket-here")
    reset_storages()

    response = login(admin).post(tenant_reverse(tenant, "quarantine:reprocess", quarantined.pk), follow=True)

    assert "The file storage could not read" in response.content.decode()
    assert "Nothing changed" in response.content.decode()
    quarantined.refresh_from_db()
    assert quarantined.status == "quarantined" and "spam" in quarantined.quarantine_reason
