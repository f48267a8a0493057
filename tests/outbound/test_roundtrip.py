"""The whole trip on real servers: a customer mail polled from Dovecot becomes a ticket; the agent's reply
goes through Postfix into the customer's Dovecot mailbox looking right (From, signature, layout, threading
headers, attachment from S3); the customer's answer, appended to the support mailbox, threads back."""

from __future__ import annotations

import email
import email.policy
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mailboxes import polling
from mailboxes.models import EmailSettings, Mailbox, OutboundEmail
from tests.inbound.conftest import build_mail
from tests.outbound.conftest import make_member
from tickets import replies, threading
from tickets.models import Message, MessageKind, Ticket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Fresh addresses per run: the rig's Dovecot lives for the whole session and other tests use its users.
SUPPORT = f"support-{uuid.uuid4().hex[:8]}@acme.test"
CUSTOMER = f"dana-{uuid.uuid4().hex[:8]}@customer.test"


@pytest.fixture
def support(tenant, dovecot, postfix, rig_ca, s3_storage) -> Mailbox:
    password = dovecot.add_user(SUPPORT)
    dovecot.add_user(CUSTOMER)
    return Mailbox.objects.create(
        tenant=tenant,
        name="Acme Support",
        key="SUP",
        email=SUPPORT,
        sender_name="Acme Support",
        imap_host="127.0.0.1",
        imap_port=dovecot.imaps_port,
        imap_security="ssl",
        imap_username=SUPPORT,
        imap_password=password,
        smtp_host="127.0.0.1",
        smtp_port=postfix.submission_port,
        smtp_security="starttls",
        smtp_same_credentials=True,
        allow_private_hosts=True,
        save_to_sent=False,
        is_default=True,
        poll_interval=5,
    )


def poll(mailbox) -> None:
    result = polling.poll(mailbox.pk)
    assert result.leased and not result.error, result


def test_reply_reaches_the_customer_through_postfix_and_the_answer_threads_back(tenant, support, dovecot):
    agent = make_member(tenant, "agnes@acme.test", "agent", "Agnes Agent")
    agent.phone = "+1 555 0100"
    agent.signature = "{{ agent.name }}, {{ tenant.name }} · {{ agent.phone }}"
    agent.save()
    settings = EmailSettings.for_tenant(tenant)
    settings.html_layout = (
        '<table class="acme-layout"><tr><td>{{ content }}</td></tr></table><p>Acme footer</p>'
    )
    settings.save()

    # 1. The customer writes; the poller turns it into a ticket.
    original_id = "<printer-1@customer.test>"
    dovecot.append(
        SUPPORT,
        build_mail(
            sender=f"Dana Customer <{CUSTOMER}>",
            to=SUPPORT,
            subject="Printer on fire",
            message_id=original_id,
        ),
    )
    poll(support)
    ticket = Ticket.objects.get(tenant=tenant)
    assert ticket.title == "Printer on fire"

    # 2. The agent answers with an attachment (stored in S3, streamed into the mail).
    payload = bytes(range(256)) * 300
    upload = SimpleUploadedFile("fuser-report.pdf", payload, content_type="application/pdf")
    message = replies.send_reply(
        ticket, author=agent, to=None, cc=[], bcc=[], body="We replaced the fuser unit.", attachments=[upload]
    )
    row = OutboundEmail.objects.get(ticket_message=message)
    assert row.status == "sent", (row.error_message, row.smtp_text)

    # 3. It arrives in the customer's mailbox, through Postfix and LMTP.
    raw = dovecot.wait_for_messages(CUSTOMER, match=lambda m: row.message_id.encode() in m)[0]
    received = email.message_from_bytes(raw, policy=email.policy.strict)
    assert str(received["From"]) == f"Agnes Agent via Acme Support <{SUPPORT}>"
    assert received["Subject"] == f"Re: Printer on fire {threading.subject_tag(ticket)}"
    assert received["Message-ID"] == row.message_id and ticket.reply_token in row.message_id
    assert received["In-Reply-To"] == original_id
    assert original_id in received["References"].split()
    text = received.get_body(("plain",)).get_content()
    html = received.get_body(("html",)).get_content()
    assert "We replaced the fuser unit." in text
    assert (
        "-- \r\nAgnes Agent, Acme Support · +1 555 0100" in text
        or "-- \nAgnes Agent, Acme Support · +1 555 0100" in text
    )
    assert (
        '<table class="acme-layout">' in html
        and "Acme footer" in html
        and "We replaced the fuser unit." in html
    )
    (attachment,) = list(received.iter_attachments())
    assert attachment.get_filename() == "fuser-report.pdf" and attachment.get_content() == payload

    # 4. The customer answers from their mail client; the answer threads into the same ticket.
    answer = build_mail(
        sender=f"Dana Customer <{CUSTOMER}>",
        to=SUPPORT,
        subject=str(received["Subject"]).replace("Re: ", "RE: Re: ", 1),
        in_reply_to=row.message_id,
        references=f"{original_id} {row.message_id}",
        body="It works now, thank you!",
    )
    dovecot.append(SUPPORT, answer)
    poll(support)
    assert Ticket.objects.filter(tenant=tenant).count() == 1
    thread = list(Message.objects.filter(ticket=ticket).order_by("created_at", "id"))
    assert [m.kind for m in thread] == [MessageKind.INBOUND, MessageKind.OUTBOUND, MessageKind.INBOUND]
    assert "It works now" in thread[-1].text
    assert thread[-1].threading_signal == "in-reply-to"
