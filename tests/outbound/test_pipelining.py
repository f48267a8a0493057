"""Against a server that offers PIPELINING (like Postfix, Gmail, Microsoft 365) the sender overlaps mails:
the next mail's commands travel before the previous answer is read. Every outcome still lands on the
right mail, a broken connection costs nobody a duplicate, and the next mail goes out on a new connection."""

from __future__ import annotations

import email
import email.policy
import threading

import pytest
from aiosmtpd.controller import Controller

from mailboxes import outbound
from mailboxes.models import OutboundEmail
from tests.rig.ports import LOOPBACK, free_port
from tickets import replies

pytestmark = pytest.mark.django_db


class PipeliningServer:
    """aiosmtpd that advertises PIPELINING; recipients drive failures: reject@ (550 at RCPT), full@ (552 after
    DATA), drop@ (the message is read, then the connection is cut without an answer)."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.dropped: list[bytes] = []
        self.sessions = 0
        self.lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        with self.lock:
            self.sessions += 1
        return [responses[0], "250-PIPELINING", *responses[1:]]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject@"):
            return "550 5.1.1 User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content
        if any(r.startswith("drop@") for r in envelope.rcpt_tos):
            with self.lock:
                self.dropped.append(data)
            server.transport.abort()
            return "451 never sent"
        if any(r.startswith("full@") for r in envelope.rcpt_tos):
            return "552 5.2.2 Mailbox full"
        with self.lock:
            self.messages.append(data)
        return "250 2.0.0 queued"


@pytest.fixture
def pipelining_server():
    handler = PipeliningServer()
    controller = Controller(handler, hostname=LOOPBACK, port=free_port())
    controller.start()
    yield handler, controller.port
    controller.stop()


def message_id(raw: bytes) -> str:
    return email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"]


def test_a_pipelined_batch_puts_every_outcome_on_the_right_mail(
    ticket, agent, pipelining_server, django_capture_on_commit_callbacks
):
    server, port = pipelining_server
    mailbox = ticket.mailbox
    mailbox.smtp_port, mailbox.smtp_security, mailbox.smtp_password = port, "none", ""
    mailbox.save()
    recipients = ["ok1@customer.test", "drop@customer.test", "ok3@customer.test", "reject@customer.test",
                  "full@customer.test", "ok6@customer.test"]  # fmt: skip
    with django_capture_on_commit_callbacks(execute=False):  # queued now, sent by the batch below
        rows = [
            OutboundEmail.objects.get(
                ticket_message=replies.send_reply(
                    ticket, author=agent, to=[to], cc=[], bcc=[], body=to, attachments=[]
                )
            )
            for to in recipients
        ]

    result = outbound.send_batch(mailbox.pk)

    statuses = {r.pk: r.status for r in OutboundEmail.objects.filter(pk__in=[r.pk for r in rows])}
    assert [statuses[r.pk] for r in rows] == ["sent", "uncertain", "sent", "failed", "failed", "sent"]
    # The two failures each queued a notification to the agent; the same batch picked them up and sent them.
    alerts = list(OutboundEmail.objects.filter(kind="notification").order_by("pk"))
    assert [a.to for a in alerts] == [["agnes@acme.test"], ["agnes@acme.test"]]
    assert (result.sent, result.uncertain, result.failed) == (3 + 2, 1, 2)
    assert sorted(result.ids) == sorted([r.pk for r in rows] + [a.pk for a in alerts])
    sent_ids = [message_id(raw) for raw in server.messages]
    expected = [rows[0].message_id, rows[2].message_id, rows[5].message_id, *[a.message_id for a in alerts]]
    assert sorted(sent_ids) == sorted(expected) and len(sent_ids) == len(set(sent_ids))  # each exactly once
    assert [message_id(raw) for raw in server.dropped] == [rows[1].message_id]
    assert server.sessions == 2  # the cut connection was replaced once, the rest shared one
    failed = {r.pk: r for r in OutboundEmail.objects.filter(status="failed")}
    assert "does not exist" in failed[rows[3].pk].error_message
    assert "is full" in failed[rows[4].pk].error_message
