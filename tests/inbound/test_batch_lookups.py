"""One poll batch reads its contacts and Message-IDs together; the answers stay right within the batch and
after a failure, and the database still has the last word on duplicates."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailboxes import polling
from mailboxes.models import InboundMessage, InboundStatus
from tests.inbound.conftest import build_mail, make_mailbox
from tickets import intake
from tickets.lookups import Lookups
from tickets.models import Contact, Message, MessageKind, Ticket

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def support(tenant, dovecot, s3_storage, queue):
    return make_mailbox(tenant, dovecot, default_queue=queue)


def test_a_reply_threads_to_a_ticket_opened_earlier_in_the_same_batch(support, dovecot):
    first = build_mail(sender="Ann <ann@client.test>", message_id="<first@client.test>", subject="Broken")
    reply = build_mail(
        sender="Ann <ann@client.test>",
        subject="Re: Broken",
        in_reply_to="<first@client.test>",
        references="<first@client.test>",
    )
    again = build_mail(sender="Ann <ann@client.test>", message_id="<first@client.test>", subject="Broken")
    for raw in (first, reply, again):
        dovecot.append(support.email, raw)

    result = polling.poll(support.pk)

    assert (result.new_tickets, result.replies, result.duplicates) == (1, 1, 1), result
    ticket = Ticket.objects.get(mailbox=support)
    assert [m.threading_signal for m in ticket.messages.order_by("pk")] == ["new", "in-reply-to"]
    assert Contact.objects.filter(email="ann@client.test").count() == 1


def test_the_batch_asks_the_database_once_not_per_message(support, dovecot, tenant):
    Contact.objects.create(tenant=tenant, email="known@client.test", name="Known")
    for n in range(12):
        dovecot.append(
            support.email, build_mail(sender=f"Person {n % 3} <p{n % 3}@client.test>", subject=f"#{n}")
        )

    with CaptureQueriesContext(connection) as queries:
        result = polling.poll(support.pk)

    assert result.new_tickets == 12
    contact_reads = [
        q for q in queries if q["sql"].startswith("SELECT") and 'FROM "tickets_contact"' in q["sql"]
    ]
    assert len(contact_reads) == 1, [q["sql"][:120] for q in contact_reads]
    contact_writes = [q for q in queries if q["sql"].startswith('INSERT INTO "tickets_contact"')]
    assert len(contact_writes) == 1  # the batch's new people, together
    outbound_reads = [q for q in queries if 'FROM "mailboxes_outboundemail"' in q["sql"]]
    assert len(outbound_reads) == 1  # the batch's Message-IDs, checked together (not once per message)
    reindex = [q for q in queries if "SET search_vector = setweight" in q["sql"]]
    assert len(reindex) == 1


def test_a_mail_another_worker_stored_meanwhile_becomes_a_duplicate(support, tenant):
    """The batch read "new" for this Message-ID; another worker then committed the same mail first."""
    other = make_mailbox(tenant, email="sales@example.test")
    raw = build_mail(message_id="<same@client.test>")
    winner = intake.receive(_stored(other, raw))
    assert winner.kind == "new-ticket"
    context = intake.Context()
    context.lookups.stored[(tenant.pk, "same@client.test")] = None  # what the batch read before the winner
    context.lookups.tickets[(tenant.pk, "same@client.test")] = None

    row = _stored(support, raw)
    outcome = intake.commit(intake.prepare(row, raw, context=context), context=context)

    assert outcome.kind == "duplicate"
    row.refresh_from_db()
    assert row.status == InboundStatus.DUPLICATE
    assert "another worker" in outcome.reason  # the unique constraint caught it, not a lookup
    assert Message.objects.filter(tenant=tenant, kind=MessageKind.INBOUND).count() == 1
    assert Ticket.objects.filter(tenant=tenant).count() == 1
    assert context.lookups.stored == {}  # the failed transaction made the batch forget what it had read


def test_forget_drops_every_answer():
    lookups = Lookups()
    lookups.contacts[(1, "a@b.test")] = None
    lookups.tickets[(1, "x@y")] = 7
    lookups.remember(1, "<z@y>", 8)
    assert lookups.stored[(1, "z@y")] == "already stored (ticket id 8)" and lookups.tickets[(1, "z@y")] == 8
    lookups.forget()
    assert (lookups.contacts, lookups.tickets, lookups.stored) == ({}, {}, {})


def _stored(mailbox, raw: bytes) -> InboundMessage:
    from mailboxes import inbound

    return inbound.record_raw(raw, mailbox=mailbox)


def test_one_bad_message_in_a_commit_group_costs_only_itself(support, dovecot, tenant):
    """A bounce for a mail we never sent fails inside the group's transaction: the group rolls back and is
    committed one by one; the others land once, with clean traces, the bounce is quarantined."""
    from tests.inbound.test_polling import _bounce

    dovecot.append(support.email, build_mail(sender="Ann <ann@client.test>", subject="First"))
    dovecot.append(support.email, _bounce(support.email, "<never-sent@example.test>"))
    dovecot.append(support.email, build_mail(sender="Bob <bob@client.test>", subject="Second"))

    result = polling.poll(support.pk)

    assert (result.new_tickets, result.quarantined) == (2, 1), result
    assert sorted(Ticket.objects.filter(tenant=tenant).values_list("number", flat=True)) == [1001, 1002]
    for row in InboundMessage.objects.filter(mailbox=support, outcome="new-ticket"):
        steps = [s["step"] for s in row.trace]
        assert steps.count("write") == 1 and steps.count("thread") == 1, steps
    bad = InboundMessage.objects.get(mailbox=support, status=InboundStatus.QUARANTINED)
    assert "bounce for a message we do not know" in bad.quarantine_reason


def test_a_group_whose_ledger_row_another_worker_claimed_commits_the_rest_alone(support, tenant):
    """The group claims its ledger rows in one UPDATE at the end; a row taken meanwhile rolls the group
    back and each message is committed alone: the taken one is left to its owner, nothing is doubled."""
    rows = [_stored(support, build_mail(subject=f"Mail {n}")) for n in range(3)]
    context = intake.Context()
    group = [intake.prepare(row, context=context) for row in rows]
    InboundMessage.objects.filter(pk=rows[1].pk).update(status=InboundStatus.PROCESSED, outcome="new-ticket")

    with CaptureQueriesContext(connection) as queries:
        outcomes = intake.commit_many(group, context=context)

    assert [o.kind for o in outcomes] == ["new-ticket", "new-ticket", "new-ticket"]
    assert outcomes[1].ticket_id is None  # what the other worker recorded, not a ticket of ours
    assert Ticket.objects.filter(tenant=tenant).count() == 2
    assert sum('AS v("id", "message_id", "status"' in q["sql"] for q in queries) == 1  # the group's one claim
    for row in (rows[0], rows[2]):
        row.refresh_from_db()
        assert row.status == InboundStatus.PROCESSED and row.ticket_id
