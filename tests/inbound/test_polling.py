"""Through Dovecot: new mail becomes tickets exactly once; threading, contacts, automatic mail, dedupe."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from mailboxes import poll_leases, polling
from mailboxes.models import FolderState, Health, InboundMessage, InboundStatus, Mailbox, OutboundEmail
from tests.inbound.conftest import build_mail, make_mailbox
from tickets import threading
from tickets.models import Contact, Customer, CustomerDomain, Message, Participant, Status, Ticket

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def support(tenant, dovecot, s3_storage, queue):
    return make_mailbox(tenant, dovecot, default_queue=queue)


def poll(mailbox: Mailbox) -> polling.PollResult:
    result = polling.poll(mailbox.pk)
    assert result.leased and not result.error, result
    return result


def deliver(dovecot, mailbox: Mailbox, raw: bytes, folder: str = "INBOX") -> int:
    return dovecot.append(mailbox.email, raw, folder)


def only_ticket(mailbox) -> Ticket:
    tickets = list(Ticket.objects.filter(mailbox=mailbox))
    assert len(tickets) == 1, tickets
    return tickets[0]


def test_new_mail_becomes_a_ticket_with_contact_and_customer(support, dovecot, tenant):
    customer = Customer.objects.create(tenant=tenant, name="Customer Ltd")
    CustomerDomain.objects.create(tenant=tenant, customer=customer, domain="customer.test")
    raw = build_mail(
        sender="Jane Doe <Jane@Customer.test>",
        subject="Printer on fire",
        attachments=[("report.pdf", "application/pdf", b"%PDF-1.4 test")],
    )
    deliver(dovecot, support, raw)

    result = poll(support)

    assert result.new_tickets == 1
    ticket = only_ticket(support)
    assert ticket.title == "Printer on fire"
    assert ticket.status == Status.NEW
    assert ticket.queue.name == "Support"
    contact = Contact.objects.get(tenant=tenant, email="jane@customer.test")
    assert contact.name == "Jane Doe"
    assert contact.customer == customer
    assert ticket.requester == contact and ticket.customer == customer
    message = ticket.messages.get()
    assert message.threading_signal == "new"
    assert message.attachments.get().filename == "report.pdf"
    inbound = InboundMessage.objects.get(mailbox=support)
    assert inbound.status == InboundStatus.PROCESSED and inbound.outcome == "new-ticket"
    assert inbound.uid == 1 and inbound.uidvalidity
    support.refresh_from_db()
    assert support.health == Health.CONNECTED and support.messages_imported == 1
    assert [s["step"] for s in inbound.trace][:3] == ["parse", "classify", "attachments"]


def test_existing_contact_is_reused_and_linked_by_domain_later(support, dovecot, tenant):
    contact = Contact.objects.create(tenant=tenant, email="max@later.test", name="")
    customer = Customer.objects.create(tenant=tenant, name="Later Inc")
    CustomerDomain.objects.create(tenant=tenant, customer=customer, domain="later.test")
    deliver(dovecot, support, build_mail(sender="Max Mustermann <max@later.test>"))

    poll(support)

    contact.refresh_from_db()
    assert Contact.objects.filter(tenant=tenant, email="max@later.test").count() == 1
    assert contact.customer == customer and contact.name == "Max Mustermann"


def _first(support, dovecot, **kw) -> tuple[Ticket, Message]:
    deliver(dovecot, support, build_mail(**kw))
    poll(support)
    ticket = Ticket.objects.filter(mailbox=support).order_by("-pk").first()
    return ticket, ticket.messages.order_by("-pk").first()


def test_reply_threads_by_in_reply_to(support, dovecot):
    ticket, first = _first(support, dovecot)
    deliver(dovecot, support, build_mail(subject="Re: something else", in_reply_to=first.message_id))
    poll(support)
    assert Ticket.objects.filter(mailbox=support).count() == 1
    reply = ticket.messages.order_by("-pk").first()
    assert reply.threading_signal == "in-reply-to"
    assert InboundMessage.objects.filter(mailbox=support, outcome="reply").count() == 1


def test_reply_threads_by_references_to_our_outbound_message(support, dovecot, tenant):
    ticket, _ = _first(support, dovecot)
    ours = OutboundEmail.objects.create(
        tenant=tenant, mailbox=support, kind="reply", ticket=ticket, from_addr=support.email,
        to=["jane@customer.test"], subject="Re: Printer", message_id="<abc.123@helpdesk.test>",
    )  # fmt: skip
    deliver(
        dovecot,
        support,
        build_mail(subject="Re: Printer", references=f"<unrelated@elsewhere.test> {ours.message_id}"),
    )
    poll(support)
    assert Ticket.objects.filter(mailbox=support).count() == 1
    assert ticket.messages.order_by("-pk").first().threading_signal == "references"


def test_reply_threads_by_signed_subject_token_only(support, dovecot, tenant):
    ticket, _ = _first(support, dovecot)
    unsigned = f"Re: Printer [#{ticket.reference}]"
    deliver(dovecot, support, build_mail(subject=unsigned))
    poll(support)
    assert Ticket.objects.filter(mailbox=support).count() == 2  # a bare number is not trusted

    signed = f"Re: Printer {threading.subject_tag(ticket)}"
    deliver(dovecot, support, build_mail(subject=signed))
    poll(support)
    assert Ticket.objects.filter(mailbox=support).count() == 2
    assert ticket.messages.order_by("-pk").first().threading_signal == "subject-token"

    tag = threading.subject_tag(ticket)
    forged = tag[:-2] + ("y" if tag[-2] == "x" else "x") + "]"  # one signature character wrong
    deliver(dovecot, support, build_mail(subject=f"Re: {forged}"))
    poll(support)
    assert Ticket.objects.filter(mailbox=support).count() == 3


def test_non_participant_quoting_a_token_gets_a_new_linked_ticket(support, dovecot):
    ticket, first = _first(support, dovecot)
    deliver(
        dovecot,
        support,
        build_mail(sender="Mallory <mallory@other.test>", subject=f"Re: {threading.subject_tag(ticket)}"),
    )
    deliver(dovecot, support, build_mail(sender="Eve <eve@other.test>", in_reply_to=first.message_id))
    poll(support)

    newer = list(Ticket.objects.filter(mailbox=support).exclude(pk=ticket.pk))
    assert len(newer) == 2
    for t in newer:
        assert t.related_to == ticket
        assert t.messages.get().threading_signal == "new-not-participant"
    assert ticket.messages.count() == 1


def test_copied_person_is_a_participant_and_may_reply(support, dovecot):
    ticket, first = _first(support, dovecot, headers={"Cc": "Colleague <colleague@customer.test>"})
    assert Participant.objects.filter(ticket=ticket, contact__email="colleague@customer.test").exists()
    deliver(dovecot, support, build_mail(sender="colleague@customer.test", in_reply_to=first.message_id))
    poll(support)
    assert Ticket.objects.filter(mailbox=support).count() == 1


def test_reply_to_solved_ticket_reopens_it_and_old_one_starts_a_new_ticket(support, dovecot, tenant):
    ticket, first = _first(support, dovecot)
    Ticket.objects.filter(pk=ticket.pk).update(status=Status.SOLVED, solved_at=timezone.now())
    deliver(dovecot, support, build_mail(in_reply_to=first.message_id))
    poll(support)
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN

    long_ago = timezone.now() - timedelta(days=90)
    Ticket.objects.filter(pk=ticket.pk).update(status=Status.CLOSED, closed_at=long_ago, solved_at=long_ago)
    deliver(dovecot, support, build_mail(in_reply_to=first.message_id))
    poll(support)
    ticket.refresh_from_db()
    assert ticket.status == Status.CLOSED
    newest = Ticket.objects.filter(mailbox=support).order_by("-pk").first()
    assert newest.related_to == ticket
    assert newest.messages.get().threading_signal == "new-after-reopen-window"


def test_same_message_twice_and_repoll_create_no_duplicates(support, dovecot):
    raw = build_mail(message_id="<once@customer.test>")
    deliver(dovecot, support, raw)
    deliver(dovecot, support, raw)  # the same bytes again
    # The same Message-ID delivered again through another route (other Received headers).
    deliver(dovecot, support, b"Received: from relay2.test\r\n" + raw)
    poll(support)
    poll(support)
    assert Ticket.objects.filter(mailbox=support).count() == 1
    assert Message.objects.filter(ticket__mailbox=support).count() == 1
    statuses = sorted(InboundMessage.objects.filter(mailbox=support).values_list("status", flat=True))
    assert statuses == ["duplicate", "duplicate", "processed"]


def test_uidvalidity_change_resyncs_without_duplicates(support, dovecot):
    for n in range(3):
        deliver(dovecot, support, build_mail(subject=f"Question {n}"))
    deliver(dovecot, support, build_mail(subject="No id", with_message_id=False))
    poll(support)
    assert Ticket.objects.filter(mailbox=support).count() == 4
    state = FolderState.objects.get(mailbox=support, folder="INBOX")

    dovecot.doveadm(
        "mailbox", "update", "--uid-validity", str(state.uidvalidity + 1000), "-u", support.email, "INBOX"
    )
    deliver(dovecot, support, build_mail(subject="After the change"))
    poll(support)

    state.refresh_from_db()
    assert state.uidvalidity != state.uidvalidity - 1000 and state.last_uid >= 5
    assert Ticket.objects.filter(mailbox=support).count() == 5
    assert Message.objects.filter(ticket__mailbox=support).count() == 5


def test_two_different_messages_without_message_id_stay_two(support, dovecot):
    deliver(dovecot, support, build_mail(subject="First", body="one", with_message_id=False))
    deliver(dovecot, support, build_mail(subject="Second", body="two", with_message_id=False))
    poll(support)
    messages = Message.objects.filter(ticket__mailbox=support)
    assert messages.count() == 2
    ids = {m.message_id for m in messages}
    assert len(ids) == 2 and all(i.endswith("@surrogate.invalid>") for i in ids)


def test_out_of_office_and_bounce_attach_without_reopening_or_autoreply(support, dovecot, tenant):
    Mailbox.objects.filter(pk=support.pk).update(autoreply_enabled=True)
    support.refresh_from_db()
    ticket, _ = _first(support, dovecot)
    ours = OutboundEmail.objects.create(
        tenant=tenant, mailbox=support, kind="reply", ticket=ticket, from_addr=support.email,
        to=["jane@customer.test"], subject="Re: Printer", message_id="<reply-1.tok@helpdesk.test>",
        status="sent",
    )  # fmt: skip
    Ticket.objects.filter(pk=ticket.pk).update(status=Status.SOLVED, solved_at=timezone.now())
    outbound_before = OutboundEmail.objects.filter(kind="auto_reply").count()

    oof = build_mail(
        subject="Automatic reply: Re: Printer",
        in_reply_to=ours.message_id,
        headers={"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"},
    )
    deliver(dovecot, support, oof)
    deliver(dovecot, support, _bounce(support.email, ours.message_id))
    poll(support)

    ticket.refresh_from_db()
    assert ticket.status == Status.SOLVED
    auto = list(ticket.messages.filter(kind="automatic"))
    assert len(auto) == 2
    assert OutboundEmail.objects.filter(kind="auto_reply").count() == outbound_before
    ours.refresh_from_db()
    assert ours.status == "failed" and "5.1.1" in ours.error_message
    for row in InboundMessage.objects.filter(mailbox=support, outcome="automatic"):
        notes = [s.get("note", "") for s in row.trace if s["step"] == "auto-reply"]
        assert notes and notes[0].startswith("not sent: automatic mail")


def _bounce(to: str, original_id: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.test>\r\n"
        f"To: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"\r\n'
        "Message-ID: <bounce-1@mx.customer.test>\r\n"
        "\r\n"
        "--BOUNDARY\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n\r\n"
        "--BOUNDARY\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.test\r\n\r\n"
        "Final-Recipient: rfc822; gone@customer.test\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <gone@customer.test>: Recipient address rejected\r\n\r\n"
        "--BOUNDARY\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        f"From: {to}\r\nTo: gone@customer.test\r\nSubject: Re: Printer\r\nMessage-ID: {original_id}\r\n\r\n"
        "--BOUNDARY--\r\n"
    ).encode()


def test_history_import_creates_closed_tickets_without_autoreplies(tenant, dovecot, s3_storage):
    mailbox = make_mailbox(
        tenant, dovecot, autoreply_enabled=True, close_automatically=True, connected_at=None
    )
    for n in range(3):
        dovecot.append(mailbox.email, build_mail(subject=f"Old {n}"))
    time.sleep(1.1)  # INTERNALDATE has one-second resolution
    Mailbox.objects.filter(pk=mailbox.pk).update(connected_at=timezone.now())
    time.sleep(1.1)
    poll(mailbox)
    Mailbox.objects.filter(pk=mailbox.pk).update(close_automatically=False)
    dovecot.append(mailbox.email, build_mail(subject="Fresh", sender="new@customer.test"))
    poll(mailbox)

    history = InboundMessage.objects.filter(mailbox=mailbox, is_history=True)
    assert history.count() == 3
    assert set(
        Ticket.objects.filter(mailbox=mailbox, title__startswith="Old").values_list("status", flat=True)
    ) == {Status.CLOSED}
    fresh = InboundMessage.objects.get(mailbox=mailbox, is_history=False)
    assert Ticket.objects.get(pk=fresh.ticket_id).status == Status.NEW
    for row in history:
        notes = [s.get("note", "") for s in row.trace if s["step"] == "auto-reply"]
        assert notes == ["not sent: imported as history"]
    mailbox.refresh_from_db()
    assert (mailbox.history_total, mailbox.history_done) == (3, 3)


@pytest.mark.parametrize("action", ["mark_read", "move", "delete"])
def test_after_import_action_runs_after_commit(tenant, dovecot, s3_storage, action):
    mailbox = make_mailbox(tenant, dovecot, after_import=action, after_import_folder="Imported")
    for n in range(3):
        dovecot.append(mailbox.email, build_mail(subject=f"Q{n}"))
    poll(mailbox)
    assert InboundMessage.objects.filter(mailbox=mailbox, after_import_done=True).count() == 3
    with dovecot.imap(mailbox.email) as client:
        client.select_folder("INBOX")
        if action == "mark_read":
            assert len(client.search(["SEEN"])) == 3
        else:
            assert client.search("ALL") == []
        if action == "move":
            client.select_folder("Imported")
            assert len(client.search("ALL")) == 3


def test_keep_leaves_mail_unread(support, dovecot):
    deliver(dovecot, support, build_mail())
    poll(support)
    with dovecot.imap(support.email) as client:
        client.select_folder("INBOX")
        assert client.search(["UNSEEN"]) and not client.search(["SEEN"])


def test_second_poller_does_nothing_while_the_lease_is_held(support, dovecot):
    assert poll_leases.acquire_lease(support.pk, "someone-else:1:x")
    deliver(dovecot, support, build_mail())
    result = polling.poll(support.pk)
    assert not result.leased
    assert not InboundMessage.objects.filter(mailbox=support).exists()
    poll_leases.release_lease(support.pk, "someone-else:1:x")
    assert poll(support).new_tickets == 1


def test_import_since_and_header_filter(tenant, dovecot, s3_storage):
    mailbox = make_mailbox(tenant, dovecot, header_filter="X-Support: yes")
    dovecot.append(mailbox.email, build_mail(subject="Filtered out"))
    dovecot.append(mailbox.email, build_mail(subject="Wanted", headers={"X-Support": "yes"}))
    poll(mailbox)
    assert list(Ticket.objects.filter(mailbox=mailbox).values_list("title", flat=True)) == ["Wanted"]
