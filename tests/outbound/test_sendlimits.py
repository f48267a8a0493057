"""The per-tenant hourly and daily caps: mail over a cap waits for a free place and then goes; none is dropped."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from mailboxes import outbound, sendlimits
from mailboxes.models import EmailSettings, OutboundEmail
from tickets import replies

pytestmark = pytest.mark.django_db


def caps(tenant, hourly: int, daily: int) -> None:
    settings = EmailSettings.for_tenant(tenant)
    settings.hourly_send_cap, settings.daily_send_cap = hourly, daily
    settings.save()


def queue_replies(ticket, agent, capture, n: int) -> list[OutboundEmail]:
    with capture(execute=False):
        for i in range(n):
            replies.send_reply(
                ticket, author=agent, to=[f"p{i}@customer.test"], cc=[], bcc=[], body=f"{i}", attachments=[]
            )
    return list(OutboundEmail.objects.order_by("pk"))


def test_hourly_cap_defers_the_rest_and_sends_it_when_the_hour_has_passed(
    tenant, ticket, agent, smtp, django_capture_on_commit_callbacks
):
    caps(tenant, hourly=2, daily=100)
    rows = queue_replies(ticket, agent, django_capture_on_commit_callbacks, 3)

    result = outbound.send_batch(ticket.mailbox_id)
    assert (result.sent, result.held) == (2, 1)
    statuses = dict(OutboundEmail.objects.values_list("pk", "status"))
    assert [statuses[r.pk] for r in rows] == ["sent", "sent", "deferred"]
    held = OutboundEmail.objects.get(pk=rows[2].pk)
    first_sent = OutboundEmail.objects.get(pk=rows[0].pk).sent_at
    assert held.attempts == 0  # waiting for the cap is not a failed attempt
    assert (
        first_sent + timedelta(hours=1) <= held.next_attempt_at <= first_sent + timedelta(hours=1, seconds=31)
    )
    assert "limit of 2 mails per hour" in held.error_message
    assert len(smtp.messages) == 2

    # Still inside the hour: the dispatcher leaves it waiting.
    with django_capture_on_commit_callbacks(execute=True):
        outbound.send_batch(ticket.mailbox_id)
    assert OutboundEmail.objects.get(pk=held.pk).status == "deferred"

    # An hour later (the sent mails' clock moved back, the held one is due): it goes.
    hour_ago = timezone.now() - timedelta(hours=1, minutes=1)
    OutboundEmail.objects.filter(status="sent").update(sent_at=hour_ago)
    OutboundEmail.objects.filter(pk=held.pk).update(next_attempt_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        outbound.dispatch_due()
    held.refresh_from_db()
    assert held.status == "sent" and held.error_message == ""
    assert len(smtp.messages) == 3


def test_daily_cap_counts_the_last_24_hours(tenant, ticket, agent, django_capture_on_commit_callbacks):
    caps(tenant, hourly=0, daily=1)
    rows = queue_replies(ticket, agent, django_capture_on_commit_callbacks, 1)
    OutboundEmail.objects.filter(pk=rows[0].pk).update(
        status="sent", sent_at=timezone.now() - timedelta(hours=3)
    )
    limit = sendlimits.allowance(tenant)
    assert limit.exhausted and "1 mails per 24 hours" in limit.reason
    assert limit.resume_at == OutboundEmail.objects.get(pk=rows[0].pk).sent_at + timedelta(days=1)
    OutboundEmail.objects.filter(pk=rows[0].pk).update(sent_at=timezone.now() - timedelta(hours=25))
    assert sendlimits.allowance(tenant).remaining >= 1


def test_zero_means_no_limit_and_connection_tests_do_not_count(tenant, mailbox):
    caps(tenant, hourly=0, daily=0)
    assert sendlimits.allowance(tenant).remaining == sendlimits.UNLIMITED
    caps(tenant, hourly=1, daily=0)
    OutboundEmail.objects.create(
        tenant=tenant, mailbox=mailbox, kind="test", from_addr=mailbox.email, to=[mailbox.email],
        message_id="<t1@acme.test>", status="sent", sent_at=timezone.now(),
    )  # fmt: skip
    assert sendlimits.allowance(tenant).remaining == 1
