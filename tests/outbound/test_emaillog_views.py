"""Settings → Email log and Templates: admins see everything, agents the mails of tickets they may see,
other tenants nothing (404)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.access import tenant_reverse
from mailboxes import outbound
from mailboxes.models import OutboundEmail
from tests.outbound.conftest import make_ticket
from tickets import replies
from tickets.models import NotificationPreference, NotificationTemplate, Queue

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def url(tenant, name, *args):
    return tenant_reverse(tenant, f"outbound:{name}", *args)


@pytest.fixture
def sent_row(ticket, agent, smtp, django_capture_on_commit_callbacks) -> OutboundEmail:
    with django_capture_on_commit_callbacks(execute=True):
        message = replies.send_reply(
            ticket, author=agent, to=None, cc=[], bcc=["audit@acme.test"], body="Hi", attachments=[]
        )
    return OutboundEmail.objects.get(ticket_message=message)


def test_admin_sees_the_log_with_filters_in_a_fixed_number_of_queries(
    tenant, admin, sent_row, mailbox, django_assert_max_num_queries
):
    for i in range(30):
        OutboundEmail.objects.create(
            tenant=tenant, mailbox=mailbox, kind="notification", from_addr=mailbox.email, to=[f"n{i}@acme.test"],
            subject=f"Note {i}", message_id=f"<n{i}@acme.test>", status="failed", error_message="Nope",
        )  # fmt: skip
    client = client_for(admin)
    with django_assert_max_num_queries(12):
        response = client.get(url(tenant, "emaillog"))
    assert response.status_code == 200
    assert sent_row.subject.encode() in response.content and b"Note 29" in response.content

    response = client.get(url(tenant, "emaillog"), {"status": "sent", "recipient": "dana@"})
    rows = list(response.context["page"].object_list)
    assert rows == [sent_row]
    response = client.get(url(tenant, "emaillog"), {"kind": "notification", "recipient": "n1"})
    assert {r.subject for r in response.context["page"].object_list} == {
        "Note 1",
        *{f"Note 1{i}" for i in range(10)},
    }


def test_detail_shows_headers_and_the_raw_eml_downloads(tenant, admin, sent_row):
    client = client_for(admin)
    response = client.get(url(tenant, "emaillog_detail", sent_row.pk))
    assert response.status_code == 200
    assert dict(response.context["headers"])["Message-ID"] == sent_row.message_id
    assert b"audit@acme.test" in response.content  # bcc shown to those who may see the log
    raw = client.get(url(tenant, "emaillog_raw", sent_row.pk))
    assert raw.status_code == 200 and raw["Content-Type"] == "message/rfc822"
    body = b"".join(raw.streaming_content)
    assert sent_row.message_id.encode() in body and b"audit@acme.test" not in body


def test_agents_see_delivery_details_of_their_tickets_only(tenant, agent, sent_row, mailbox, contact):
    client = client_for(agent)
    assert client.get(url(tenant, "emaillog")).status_code == 403  # the whole log is for admins
    assert client.get(url(tenant, "emaillog_detail", sent_row.pk)).status_code == 200
    assert client.get(url(tenant, "emaillog_raw", sent_row.pk)).status_code == 200

    hidden_queue = Queue.objects.create(tenant=tenant, name="Legal", restricted=True)
    hidden = make_ticket(tenant, mailbox, contact, queue=hidden_queue)
    row = OutboundEmail.objects.create(
        tenant=tenant, mailbox=mailbox, kind="reply", ticket=hidden, from_addr=mailbox.email, to=["x@y.test"],
        subject="Secret", message_id="<secret@acme.test>",
    )  # fmt: skip
    assert client.get(url(tenant, "emaillog_detail", row.pk)).status_code == 404
    assert client.post(url(tenant, "emaillog_retry", row.pk)).status_code == 404


def test_outsiders_get_404_everywhere(tenant, outsider, sent_row):
    client = client_for(outsider)
    for name, args in [
        ("emaillog", ()),
        ("emaillog_detail", (sent_row.pk,)),
        ("emaillog_raw", (sent_row.pk,)),
        ("templates", ()),
    ]:
        assert client.get(url(tenant, name, *args)).status_code == 404
    assert client.post(url(tenant, "emaillog_send_again", sent_row.pk)).status_code == 404


def test_retry_now_and_send_again_from_the_log(
    tenant, admin, sent_row, smtp, django_capture_on_commit_callbacks
):
    client = client_for(admin)
    OutboundEmail.objects.filter(pk=sent_row.pk).update(status="failed", error_message="Nope")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url(tenant, "emaillog_retry", sent_row.pk))
    assert response.status_code == 302
    sent_row.refresh_from_db()
    assert sent_row.status == "sent" and len(smtp.messages) == 2

    # "send again" is only for uncertain mail
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url(tenant, "emaillog_send_again", sent_row.pk))
    assert len(smtp.messages) == 2
    OutboundEmail.objects.filter(pk=sent_row.pk).update(status="uncertain")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url(tenant, "emaillog_send_again", sent_row.pk))
    sent_row.refresh_from_db()
    assert sent_row.status == "sent" and len(smtp.messages) == 3


def test_light_agents_cannot_retry(tenant, sent_row):
    from tests.conftest import make_member

    light = make_member(tenant, "leo@acme.test", "light_agent", "Leo Light")
    OutboundEmail.objects.filter(pk=sent_row.pk).update(status="failed")
    assert client_for(light).post(url(tenant, "emaillog_retry", sent_row.pk)).status_code == 403
    sent_row.refresh_from_db()
    assert sent_row.status == "failed"
    assert outbound.describe(sent_row).startswith("Failed")


def test_templates_page_edits_previews_and_resets(tenant, admin, agent):
    client = client_for(admin)
    response = client.get(url(tenant, "templates"))
    assert response.status_code == 200 and b"Ticket solved (to the contact)" in response.content
    preview = client.post(
        url(tenant, "template_preview", "resolution"),
        {"subject": "Done {{ ticket.reference }}", "body": "Bye {{ contact.first_name }}"},
    )
    assert b"Done ACME-1042" in preview.content and b"Bye Dana" in preview.content
    broken = client.post(
        url(tenant, "template_preview", "resolution"), {"subject": "{% load x %}", "body": ""}
    )
    assert b"Only simple variables" in broken.content

    response = client.post(
        url(tenant, "template_edit", "resolution"), {"enabled": "on", "subject": "Done", "body": "Bye"}
    )
    assert response.status_code == 302
    assert NotificationTemplate.objects.get(tenant=tenant, kind="resolution").subject == "Done"
    response = client.post(
        url(tenant, "template_edit", "resolution"), {"enabled": "on", "subject": "{% debug %}", "body": "x"}
    )
    assert response.status_code == 200 and NotificationTemplate.objects.get(tenant=tenant).subject == "Done"
    client.post(url(tenant, "template_edit", "resolution"), {"action": "reset"})
    assert not NotificationTemplate.objects.filter(tenant=tenant).exists()
    assert client.get(url(tenant, "template_edit", "nonsense")).status_code == 404
    assert client_for(agent).get(url(tenant, "templates")).status_code == 403


def test_members_choose_their_notifications(tenant, agent):
    client = client_for(agent)
    assert client.get(url(tenant, "notification_preferences")).status_code == 200
    client.post(url(tenant, "notification_preferences"), {"assigned_to_me": "on", "sla_breach": "on"})
    pref = NotificationPreference.objects.get(tenant=tenant, user=agent)
    assert (pref.assigned_to_me, pref.reply_on_my_ticket, pref.sla_breach, pref.delivery_failed) == (
        True,
        False,
        True,
        False,
    )


def test_admins_set_sla_policies_and_business_hours(tenant, admin, agent, outsider, support_queue):
    from tickets.models import BusinessHours, SlaPolicy

    client = client_for(admin)
    assert client.get(url(tenant, "sla")).status_code == 200
    response = client.post(
        url(tenant, "sla"),
        {"form": "policy", "name": "Urgent support", "queue": support_queue.pk, "priority": 4,
         "first_response_minutes": 30, "resolution_minutes": 480, "business_hours_only": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    policy = SlaPolicy.objects.get(tenant=tenant)
    assert (policy.queue, policy.priority, policy.first_response_minutes) == (support_queue, 4, 30)
    response = client.post(
        url(tenant, "sla"),
        {
            "form": "hours",
            "weekdays": ["0", "1", "2"],
            "start": "08:00",
            "end": "07:00",
            "timezone": "Mars/Base",
        },
    )
    assert response.status_code == 200 and not BusinessHours.objects.exists()
    assert (
        b"The day must end after it starts." in response.content and b"Unknown time zone" in response.content
    )
    client.post(
        url(tenant, "sla"),
        {
            "form": "hours",
            "weekdays": ["0", "1", "2"],
            "start": "08:00",
            "end": "16:00",
            "timezone": "Europe/Berlin",
        },
    )
    assert BusinessHours.objects.get(tenant=tenant).weekdays == [0, 1, 2]
    assert client_for(agent).get(url(tenant, "sla")).status_code == 403
    assert client_for(outsider).post(url(tenant, "sla_delete", policy.pk)).status_code == 404
    client.post(url(tenant, "sla_delete", policy.pk))
    assert not SlaPolicy.objects.exists()
