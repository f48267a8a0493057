"""export_tenant writes the documented shape, with what intake stored."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from mailboxes import inbound
from tests.inbound.conftest import build_mail, make_mailbox
from tickets import intake
from tickets.models import Customer, CustomerDomain

pytestmark = pytest.mark.django_db


def test_export_has_the_documented_shape(tenant, other_tenant, s3_storage, tmp_path, queue):
    customer = Customer.objects.create(tenant=tenant, name="Customer Ltd")
    CustomerDomain.objects.create(tenant=tenant, customer=customer, domain="customer.test")
    mailbox = make_mailbox(tenant, default_queue=queue)
    to = mailbox.email
    first = build_mail(to=to, message_id="<one@customer.test>", attachments=[("a.txt", "text/plain", b"hi")])
    reply = build_mail(to=to, message_id="<two@customer.test>", in_reply_to="<one@customer.test>")
    spam = build_mail(to=to, message_id="<spam@x.test>", headers={"X-Spam-Flag": "YES"})
    for raw in (first, reply, spam):
        intake.receive(inbound.record_raw(raw, mailbox=mailbox), raw)
    make_mailbox(other_tenant)  # another tenant's data never appears

    out = tmp_path / "export.json"
    call_command("export_tenant", "--tenant", "acme", "--out", str(out), stdout=io.StringIO())
    data = json.loads(out.read_text())

    assert data["tenant"] == "acme"
    (ticket,) = data["tickets"]
    assert ticket["queue"] == "Support" and ticket["mailbox"] == mailbox.email
    assert ticket["requester"] == "jane@customer.test" and ticket["customer"] == "Customer Ltd"
    assert ticket["participants"] == ["jane@customer.test"] and ticket["tags"] == []
    first_msg, reply_msg = ticket["messages"]
    assert first_msg["kind"] == "inbound" and first_msg["threading_signal"] == "new"
    assert (
        reply_msg["threading_signal"] == "in-reply-to" and reply_msg["in_reply_to"] == "<one@customer.test>"
    )
    (att,) = first_msg["attachments"]
    assert set(att) >= {"filename", "content_type", "size", "sha256", "inline", "content_id"}
    assert data["contacts"] == [
        {"email": "jane@customer.test", "name": "Jane Customer", "customer": "Customer Ltd"}
    ]
    assert data["customers"] == [{"name": "Customer Ltd", "domains": ["customer.test"]}]
    (quarantined,) = data["quarantine"]
    assert quarantined["message_id"] == "<spam@x.test>" and "spam" in quarantined["reason"]
    outcomes = sorted(row["outcome"] for row in data["inbound"])
    assert outcomes == ["new-ticket", "quarantined", "reply"]
    assert all(row["ticket"] in (ticket["number"], None) for row in data["inbound"])
    assert data["outbound"] == []


def test_a_customer_reply_notifies_the_assignee(tenant, agent, s3_storage):
    from mailboxes.models import OutboundEmail
    from tickets.models import Ticket

    mailbox = make_mailbox(tenant)
    first = build_mail(to=mailbox.email, message_id="<q1@customer.test>")
    intake.receive(inbound.record_raw(first, mailbox=mailbox), first)
    Ticket.objects.update(assignee=agent)
    reply = build_mail(to=mailbox.email, message_id="<q2@customer.test>", in_reply_to="<q1@customer.test>")
    row = inbound.record_raw(reply, mailbox=mailbox)
    assert intake.receive(row, reply).kind == "reply"
    notice = OutboundEmail.objects.get(kind="notification")
    assert notice.to == [agent.email]
    row.refresh_from_db()
    assert any(step["step"] == "notify" for step in row.trace)
