"""An agent's reply: one transaction, sent exactly as previewed (signature, greeting, layout, quoted history),
with the tenant's default copies, threading headers and the ticket's signed subject tag."""

from __future__ import annotations

import email
import email.policy

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile

from mailboxes.models import EmailSettings, OutboundEmail
from mailboxes.smtp_errors import InvalidAddress, NoRecipient
from tests.conftest import make_member
from tickets import replies, threading
from tickets.models import Attachment, Message, MessageKind, Participant, Status

pytestmark = pytest.mark.django_db


def sent_mail(smtp, index=-1):
    return email.message_from_bytes(smtp.messages[index].data, policy=email.policy.strict)


def parts(message):
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = message.get_body(("html",)).get_content().replace("\r\n", "\n")
    return text, html


def reply(ticket, agent, capture, **kwargs):
    values = {"to": None, "cc": [], "bcc": [], "body": "We replaced the fuser.", "attachments": []}
    values.update(kwargs)
    with capture(execute=True):
        return replies.send_reply(ticket, author=agent, **values)


@pytest.mark.parametrize("history", ["none", "last", "full"])
def test_sent_mail_is_exactly_the_preview(
    tenant, ticket, agent, smtp, django_capture_on_commit_callbacks, history
):
    settings = EmailSettings.for_tenant(tenant)
    settings.quote_history = history
    settings.greeting = "Hi {{ contact.first_name }},"
    settings.html_layout = (
        '<div class="brand">ACME {{ tenant.name }}</div>{{ content }}<footer>Thanks</footer>'
    )
    settings.save()
    reply(ticket, agent, django_capture_on_commit_callbacks, body="First answer.")  # something to quote
    Message.objects.create(
        tenant=tenant, ticket=ticket, kind=MessageKind.INBOUND, text="Still broken <b>really</b>.",
        from_addr="dana@customer.test", from_name="Dana Customer", message_id="<second@customer.test>",
        references=["<orig@customer.test>"],
    )  # fmt: skip
    Message.objects.create(tenant=tenant, ticket=ticket, kind=MessageKind.NOTE, text="internal: never quoted")

    draft = replies.preview(ticket, author=agent, body="Please try again.\nThanks for waiting.")
    reply(ticket, agent, django_capture_on_commit_callbacks, body="Please try again.\nThanks for waiting.")

    message = sent_mail(smtp)
    text, html = parts(message)
    assert text == draft.text
    assert html == draft.html
    assert message["Subject"] == draft.subject
    assert str(message["From"]) == draft.from_addr == "Agnes Agent via Acme Support <support@acme.test>"
    assert text.startswith(
        "Hi Dana,\n\nPlease try again.\nThanks for waiting.\n\n-- \nAgnes Agent · +1 555 0100\nAcme Support"
    )
    assert '<div class="brand">ACME Acme Support</div>' in html and html.endswith("<footer>Thanks</footer>")
    assert "internal: never quoted" not in text
    if history == "none":
        assert "wrote:" not in text
    elif history == "last":
        assert text.count("wrote:") == 1 and "> Still broken <b>really</b>." in text
        assert "Still broken &lt;b&gt;really&lt;/b&gt;." in html  # customer text escaped in the HTML part
    else:
        assert text.count("wrote:") == 3  # the second mail, our first answer, the original
        assert "> First answer." in text and "> It says paper jam." in text
    assert message["In-Reply-To"] == "<second@customer.test>"
    assert message["References"].split() == ["<orig@customer.test>", "<second@customer.test>"]


def test_reply_is_written_with_its_outbox_row_and_threads(
    tenant, ticket, agent, smtp, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("log.txt", b"line 1\nline 2\n", content_type="text/plain")
    message = reply(
        ticket, agent, django_capture_on_commit_callbacks, attachments=[upload], status_after=Status.PENDING
    )

    row = OutboundEmail.objects.get(ticket_message=message)
    assert row.status == "sent" and row.kind == "reply" and row.created_by == agent
    assert message.kind == MessageKind.OUTBOUND and message.message_id == row.message_id
    assert row.message_id.startswith(f"<hd.{ticket.reply_token}.")
    assert threading.subject_tag(ticket) in row.subject
    assert Attachment.objects.get(message=message).filename == "log.txt"
    ticket.refresh_from_db()
    assert ticket.status == Status.PENDING and ticket.first_response_at is not None
    assert not ticket.last_message_inbound
    sent = sent_mail(smtp)
    assert sent["Message-ID"] == row.message_id
    assert [a.get_filename() for a in sent.iter_attachments()] == ["log.txt"]
    assert sent["In-Reply-To"] == ticket.messages.filter(kind=MessageKind.INBOUND).first().message_id


def test_default_copies_are_added_once_and_bcc_stays_out_of_the_headers(
    tenant, ticket, agent, smtp, django_capture_on_commit_callbacks
):
    settings = EmailSettings.for_tenant(tenant)
    settings.cc1, settings.cc2, settings.bcc = "archive@acme.test", "boss@customer.test", "audit@acme.test"
    settings.save()
    reply(
        ticket,
        agent,
        django_capture_on_commit_callbacks,
        cc=["Boss <boss@customer.test>", "new@customer.test"],
    )

    captured = smtp.messages[-1]
    message = sent_mail(smtp)
    assert [a.addr_spec for a in message["Cc"].addresses] == [
        "boss@customer.test",
        "new@customer.test",
        "archive@acme.test",
    ]
    assert "Bcc" not in message and b"audit@acme.test" not in captured.data
    assert sorted(captured.rcpt_tos) == sorted(
        [
            "dana@customer.test",
            "boss@customer.test",
            "new@customer.test",
            "archive@acme.test",
            "audit@acme.test",
        ]
    )
    emails = set(Participant.objects.filter(ticket=ticket).values_list("contact__email", flat=True))
    assert {"boss@customer.test", "new@customer.test"} <= emails  # their answers may thread in


def test_light_agents_cannot_send(tenant, ticket, smtp):
    light = make_member(tenant, "leo@acme.test", "light_agent", "Leo Light")
    with pytest.raises(PermissionDenied):
        replies.send_reply(ticket, author=light, to=None, cc=[], bcc=[], body="hi", attachments=[])
    assert not Message.objects.filter(kind=MessageKind.OUTBOUND).exists()
    assert not OutboundEmail.objects.exists()


def test_outsiders_cannot_send_on_the_ticket(ticket, outsider):
    with pytest.raises(PermissionDenied):
        replies.send_reply(ticket, author=outsider, to=None, cc=[], bcc=[], body="hi", attachments=[])


@pytest.mark.parametrize("to,error", [(["not an address"], InvalidAddress), ([], NoRecipient)])
def test_bad_recipients_write_nothing(ticket, agent, to, error):
    with pytest.raises(error):
        replies.send_reply(
            ticket, author=agent, to=to, cc=[], bcc=[], body="hi", attachments=[], kind="forward"
        )
    assert not OutboundEmail.objects.exists()
    assert not Message.objects.filter(kind=MessageKind.OUTBOUND).exists()


def test_forward_quotes_the_customer_mail_and_starts_a_new_conversation(
    ticket, agent, smtp, django_capture_on_commit_callbacks
):
    reply(
        ticket, agent, django_capture_on_commit_callbacks, kind="forward", to=["Vendor <help@vendor.test>"],
        body="Can you check this printer?",
    )  # fmt: skip
    message = sent_mail(smtp)
    text, _html = parts(message)
    assert message["Subject"].startswith("Fwd: Printer does not print [#ACME-")
    assert "---------- Forwarded message ----------" in text and "It says paper jam." in text
    assert "Hi" not in text.split("\n", 1)[0]  # no customer greeting for a third party
    assert message["In-Reply-To"] is None
    assert smtp.messages[-1].rcpt_tos == ("help@vendor.test",)


def test_signature_variables_render_in_the_sandbox(
    tenant, ticket, agent, smtp, django_capture_on_commit_callbacks
):
    agent.signature = (
        "{{ agent.name }} | {{ agent.email }} | {{ agent.phone }} | {{ agent.mobile|default:'no mobile' }}\n"
        "Ticket {{ ticket.number }} “{{ ticket.title }}” in {{ ticket.queue }} for {{ contact.name }} <{{ contact.email }}>"
        "{{ agent.password }}{{ agent.__class__ }}"
    )
    with pytest.raises(Exception):  # noqa: B017 - underscores are refused at compile time
        replies.preview(ticket, author=agent, body="x")
    agent.signature = agent.signature.replace("{{ agent.__class__ }}", "")
    draft = replies.preview(ticket, author=agent, body="x")
    assert (
        f"Agnes Agent | agnes@acme.test | +1 555 0100 | no mobile\nTicket {ticket.number} “Printer does not print” "
        "in Support for Dana Customer <dana@customer.test>"
    ) in draft.text
    assert "pbkdf2" not in draft.text and "md5" not in draft.text.lower()
    assert "&lt;dana@customer.test&gt;" in draft.html  # plain-text signature escaped in the HTML part
