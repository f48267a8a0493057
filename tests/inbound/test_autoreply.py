"""Auto-replies: once per day per sender, never to automatic mail or history, and marked Auto-Submitted."""

from __future__ import annotations

import pytest
from django.utils import timezone

from mailboxes import autoreply, polling
from mailboxes.models import AutoReplyLog, EmailSettings, InboundMessage, OutboundEmail
from tests.inbound.conftest import build_mail, make_mailbox

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def support(tenant, dovecot, s3_storage, smtp):
    mailbox = make_mailbox(
        tenant,
        dovecot,
        autoreply_enabled=True,
        autoreply_subject="We got it: {{ ticket.title }}",
        autoreply_body="<p>Hello {{ contact.first_name }}, your request is {{ ticket.reference }}.</p>",
        smtp_host=smtp.host,
        smtp_port=smtp.plain_port,
        smtp_security="none",
    )
    smtp.add_user(mailbox.email, mailbox.imap_password)
    return mailbox


def poll(mailbox):
    result = polling.poll(mailbox.pk)
    assert not result.error, result.error
    return result


def autoreplies():
    return OutboundEmail.objects.filter(kind="auto_reply")


def test_autoreply_goes_once_per_day_per_sender_with_auto_submitted(support, dovecot, smtp):
    dovecot.append(support.email, build_mail(sender="Jane Doe <jane@customer.test>", subject="First"))
    dovecot.append(support.email, build_mail(sender="jane@customer.test", subject="Second"))
    dovecot.append(support.email, build_mail(sender="Ann <ann@customer.test>", subject="Third"))
    poll(support)

    rows = list(autoreplies().order_by("pk"))
    assert [r.to for r in rows] == [["jane@customer.test"], ["ann@customer.test"]]
    assert rows[0].subject.startswith("We got it: First [#ACME-")
    assert rows[0].extra_headers.get("Auto-Submitted") == "auto-replied"
    assert AutoReplyLog.objects.filter(mailbox=support, day=timezone.now().date()).count() == 2
    second = InboundMessage.objects.get(mailbox=support, subject="Second")
    assert any(s.get("note") == "not sent: this sender already got one today" for s in second.trace)

    for row in rows:
        row.refresh_from_db()
        assert row.status == "sent", (row.status, row.error_message, row.error_advice)
    sent = smtp.wait_for_messages(2)
    for captured in sent:
        message = captured.message
        assert message["Auto-Submitted"] == "auto-replied"
        assert message["X-Auto-Response-Suppress"] == "All"
        assert message["In-Reply-To"]
    assert "Hello Jane, your request is ACME-" in sent[0].message.get_body(("plain",)).get_content()


@pytest.mark.parametrize(
    "headers,sender",
    [
        ({"Auto-Submitted": "auto-replied"}, "jane@customer.test"),
        ({"X-Autoreply": "yes"}, "jane@customer.test"),
        ({"Precedence": "bulk"}, "news@customer.test"),
        ({}, "noreply@customer.test"),
        ({}, "MAILER-DAEMON@customer.test"),
    ],
)
def test_no_autoreply_to_automatic_mail_or_noreply_senders(support, dovecot, headers, sender):
    dovecot.append(support.email, build_mail(sender=sender, headers=headers))
    poll(support)
    assert not autoreplies().exists()
    row = InboundMessage.objects.get(mailbox=support)
    assert any(s["step"] == "auto-reply" and s["note"].startswith("not sent") for s in row.trace)


def test_no_autoreply_to_our_own_mailbox(support, dovecot, tenant):
    other = make_mailbox(tenant, None, email="sales@example.test")
    dovecot.append(support.email, build_mail(sender=other.email))
    poll(support)
    assert not autoreplies().exists()


def test_hourly_cap_stops_a_storm_but_keeps_the_mail(support, dovecot, tenant):
    settings_row = EmailSettings.for_tenant(tenant)
    settings_row.autoreply_hourly_cap = 2
    settings_row.save()
    for n in range(4):
        dovecot.append(support.email, build_mail(sender=f"person{n}@customer.test", subject=f"Storm {n}"))
    poll(support)
    assert autoreplies().count() == 2
    assert InboundMessage.objects.filter(mailbox=support, outcome="new-ticket").count() == 4
    capped = [
        row
        for row in InboundMessage.objects.filter(mailbox=support)
        if any("hourly cap" in s.get("note", "") for s in row.trace)
    ]
    assert len(capped) == 2


def test_precheck_reasons():
    class Box:
        autoreply_enabled = True
        close_automatically = False

    common = {"mailbox": Box(), "own_addresses": {"support@example.test"}, "is_history": False}
    assert autoreply.precheck(outcome="new-ticket", automatic_kind="", sender="a@b.test", **common) == ""
    assert autoreply.precheck(outcome="reply", automatic_kind="", sender="a@b.test", **common)
    assert autoreply.precheck(outcome="new-ticket", automatic_kind="bounce", sender="a@b.test", **common)
    assert autoreply.precheck(
        outcome="new-ticket", automatic_kind="", sender="support@example.test", **common
    )
