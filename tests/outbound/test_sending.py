"""Sending through a real SMTP server (the rig's aiosmtpd) with failures injected: retries, permanent
failures in plain words, uncertain deliveries that are never resent blindly, and sign-in problems."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

import pytest
from django.utils import timezone

from mailboxes import outbound
from mailboxes.models import OutboundEmail
from tests.outbound.conftest import smtp_mailbox_for
from tickets import replies
from tickets.models import Message, MessageKind, Status, Ticket

pytestmark = pytest.mark.django_db


def send_reply(ticket, agent, capture, **kwargs) -> OutboundEmail:
    values = {"to": None, "cc": [], "bcc": [], "body": "We replaced the fuser.", "attachments": []}
    values.update(kwargs)
    with capture(execute=True):
        message = replies.send_reply(ticket, author=agent, **values)
    return OutboundEmail.objects.get(ticket_message=message)


def time_passes(row: OutboundEmail) -> None:
    """The retry time has come (we move the row's clock instead of waiting)."""
    OutboundEmail.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_4xx_is_deferred_with_backoff_then_sent(ticket, agent, smtp, django_capture_on_commit_callbacks):
    smtp.fail_next(451, "4.3.0 Try again later", stage="data")
    before = timezone.now()
    row = send_reply(ticket, agent, django_capture_on_commit_callbacks)
    row.refresh_from_db()
    assert row.status == "deferred" and row.attempts == 1
    assert row.smtp_code == 451 and "try again later" in row.error_message.lower()
    assert timedelta(seconds=29) <= row.next_attempt_at - before <= timedelta(seconds=61)
    assert smtp.messages == []

    assert outbound.dispatch_due() == []  # not due yet: nothing happens
    time_passes(row)
    with django_capture_on_commit_callbacks(execute=True):
        assert outbound.dispatch_due() == [row.mailbox_id]
    row.refresh_from_db()
    assert row.status == "sent" and row.attempts == 2 and row.error_message == ""
    assert len(smtp.messages) == 1


def test_backoff_grows_with_jitter_and_caps_at_an_hour():
    for attempts in range(1, 12):
        ceiling = min(60 * 2 ** (attempts - 1), 3600)
        delays = {outbound.backoff(attempts).total_seconds() for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jitter


def test_temporary_failures_give_up_after_24_hours(ticket, agent, smtp, django_capture_on_commit_callbacks):
    smtp.fail_next(451, stage="data")
    row = send_reply(ticket, agent, django_capture_on_commit_callbacks)
    OutboundEmail.objects.filter(pk=row.pk).update(first_attempt_at=timezone.now() - timedelta(hours=25))
    time_passes(row)
    smtp.fail_next(451, stage="data")
    outbound.send(row)
    row.refresh_from_db()
    assert row.status == "failed"
    assert "could not be sent for 24 hours (2 attempts)" in row.error_message
    assert Message.objects.filter(ticket=ticket, kind=MessageKind.NOTE).exists()


def test_5xx_fails_in_plain_words_reopens_the_ticket_notes_it_and_tells_the_agent(
    ticket, agent, smtp, django_capture_on_commit_callbacks
):
    smtp.fail_next(554, "5.7.1 Message rejected as spam", stage="data")
    row = send_reply(ticket, agent, django_capture_on_commit_callbacks, status_after=Status.SOLVED)
    row.refresh_from_db()
    assert row.status == "failed" and row.smtp_code == 554
    assert row.error_message == "The server did not accept the message content (spam or content policy)."
    assert "suspicious" in row.error_advice
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN and ticket.solved_at is None
    note = Message.objects.get(ticket=ticket, kind=MessageKind.NOTE)
    assert "could not be delivered" in note.text and "What to do:" in note.text and "554" in note.text
    alert = OutboundEmail.objects.get(kind="notification")
    assert alert.to == ["agnes@acme.test"] and alert.status == "sent"
    captured = email.message_from_bytes(smtp.messages[-1].data, policy=email.policy.strict)
    assert captured["Auto-Submitted"] == "auto-generated"
    assert "could not be delivered" in captured.get_body(("plain",)).get_content()
    assert captured["To"] == "agnes@acme.test"


@pytest.mark.parametrize(
    "to,message",
    [
        (
            "reject@customer.test",
            "The address reject@customer.test does not exist (the server does not know it).",
        ),
        ("full@customer.test", "The mailbox of full@customer.test is full."),
    ],
)
def test_recipient_refusals_are_named(ticket, agent, smtp, django_capture_on_commit_callbacks, to, message):
    row = send_reply(ticket, agent, django_capture_on_commit_callbacks, to=[to])
    row.refresh_from_db()
    assert row.status == "failed" and row.error_message == message
    assert Ticket.objects.get(pk=ticket.pk).status == Status.OPEN


def test_one_refused_recipient_among_several_still_sends_and_says_so(
    ticket, agent, smtp, django_capture_on_commit_callbacks
):
    row = send_reply(ticket, agent, django_capture_on_commit_callbacks, cc=["reject@customer.test"])
    row.refresh_from_db()
    assert row.status == "sent"
    assert row.error_message.startswith("Not delivered to reject@customer.test (550")
    assert smtp.messages[-1].rcpt_tos == ("dana@customer.test",)


def test_too_large_names_the_servers_limit(ticket, agent, smtp, django_capture_on_commit_callbacks):
    smtp.set_max_message_size(2048)
    row = send_reply(ticket, agent, django_capture_on_commit_callbacks, body="x" * 5000)
    row.refresh_from_db()
    assert row.status == "failed"
    assert row.error_message.startswith(
        "The message is larger than the server accepts (its limit is 2 KB, this message is"
    )


def test_rate_limit_421_is_retried(ticket, agent, smtp, django_capture_on_commit_callbacks):
    row = send_reply(ticket, agent, django_capture_on_commit_callbacks, to=["ratelimit@customer.test"])
    row.refresh_from_db()
    assert row.status == "deferred"
    assert row.error_message.endswith("is limiting how much this mailbox may send.")


def test_drop_after_data_is_uncertain_and_never_resent_blindly(
    ticket, agent, smtp, django_capture_on_commit_callbacks
):
    smtp.drop_after_data()
    row = send_reply(ticket, agent, django_capture_on_commit_callbacks)
    row.refresh_from_db()
    assert row.status == "uncertain" and row.data_sent_at is not None
    assert "may or may not have arrived" in row.error_message
    assert len(smtp.dropped) == 1 and smtp.messages == []

    # Nothing automatic touches it: not the retry dispatcher, not the stuck-row recovery, not a redelivery.
    with django_capture_on_commit_callbacks(execute=True):
        outbound.dispatch_due(timezone.now() + timedelta(days=2))
        outbound.recover_stuck(timezone.now() + timedelta(days=2))
        outbound.send(row)
        outbound.send_batch(row.mailbox_id)
    row.refresh_from_db()
    assert row.status == "uncertain" and smtp.messages == []

    # A human checked: it did not arrive. "Send again" sends the very same message once.
    raw_key = row.raw_key
    with django_capture_on_commit_callbacks(execute=True):
        assert outbound.send_again(row)
    row.refresh_from_db()
    assert row.status == "sent" and row.raw_key == raw_key
    assert len(smtp.messages) == 1
    assert smtp.messages[0].data.replace(b"\r\n", b"\n") == smtp.dropped[0].data.replace(b"\r\n", b"\n")


def test_connection_refused_is_deferred_in_plain_words(
    tenant, ticket, agent, smtp, refused_port, django_capture_on_commit_callbacks
):
    ticket.mailbox.smtp_port = refused_port
    ticket.mailbox.save()
    row = send_reply(ticket, agent, django_capture_on_commit_callbacks)
    row.refresh_from_db()
    assert row.status == "deferred"
    assert "refused the connection" in row.error_message
    assert "port" in row.error_advice


def test_password_mailbox_with_wrong_password_fails_with_the_credentials_message(
    tenant, ticket, agent, smtp, django_capture_on_commit_callbacks
):
    ticket.mailbox.smtp_password = "wrong-password"
    ticket.mailbox.save()
    row = send_reply(ticket, agent, django_capture_on_commit_callbacks)
    row.refresh_from_db()
    assert row.status == "failed" and row.smtp_code == 535
    assert row.error_message == "The SMTP server did not accept the username or password."
    assert "app password" in row.error_advice
    assert Message.objects.filter(ticket=ticket, kind=MessageKind.NOTE).exists()


def test_a_batch_reuses_one_connection(
    tenant, ticket, agent, smtp, monkeypatch, django_capture_on_commit_callbacks
):
    from mailboxes import smtp as smtp_module

    sessions = []
    real = smtp_module.session

    def counting(mailbox):
        sessions.append(mailbox.pk)
        return real(mailbox)

    monkeypatch.setattr(smtp_module, "session", counting)
    with django_capture_on_commit_callbacks(execute=False):  # queue only; the batch sends
        for i in range(5):
            replies.send_reply(
                ticket, author=agent, to=[f"p{i}@customer.test"], cc=[], bcc=[], body=f"n{i}", attachments=[]
            )
    result = outbound.send_batch(ticket.mailbox_id)
    assert result.sent == 5 and len(smtp.messages) == 5
    assert sessions == [ticket.mailbox_id]
    assert [m.rcpt_tos for m in smtp.messages] == [(f"p{i}@customer.test",) for i in range(5)]


def test_a_mailbox_on_another_server_setting_works_with_implicit_tls(
    tenant, ticket, agent, smtp, django_capture_on_commit_callbacks
):
    mailbox = smtp_mailbox_for(tenant, smtp, security="ssl", email="support2@acme.test")
    row = send_reply(ticket, agent, django_capture_on_commit_callbacks, mailbox=mailbox)
    row.refresh_from_db()
    assert row.status == "sent" and smtp.messages[-1].secure and smtp.messages[-1].port == smtp.tls_port


def test_a_connection_test_that_never_finished_is_failed_not_resent(tenant, mailbox, smtp):
    row = OutboundEmail.objects.create(
        tenant=tenant, mailbox=mailbox, kind="test", from_addr=mailbox.email, to=[mailbox.email],
        subject="Test", message_id="<test-1@acme.test>", status="sending", claimed_at=timezone.now(), text="hi",
    )  # fmt: skip
    result = outbound.recover_stuck(timezone.now() + outbound.LEASE + timedelta(seconds=1))
    assert result == outbound.Recovery([], [])
    row.refresh_from_db()
    assert row.status == "failed" and row.error_message == "The connection test did not finish."
    assert smtp.messages == []
