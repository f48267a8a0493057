"""A commit group writes its ticket rows together: a few statements however many mails, gapless ticket numbers,
and later mail of the group sees what earlier mail did before any of it is in the database."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailboxes import inbound
from mailboxes.models import InboundMessage
from tests.inbound.conftest import build_mail, make_mailbox
from tickets import intake
from tickets.models import Participant, RoutingMode, Status, Ticket, TicketEvent
from tickets.threading import subject_tag

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def support(tenant, s3_storage):
    return make_mailbox(tenant)


def _stored(mailbox, raw: bytes) -> InboundMessage:
    return inbound.record_raw(raw, mailbox=mailbox)


def _prepared(mailbox, raws: list[bytes]) -> tuple[intake.Context, list]:
    """As the poller does: store and prepare, then read what the batch asks about together."""
    context = intake.Context()
    group = [intake.prepare(_stored(mailbox, raw), raw, context=context) for raw in raws]
    own = context.addresses_of(mailbox.tenant_id)
    context.lookups.load(mailbox.tenant, [p.parsed for p in group], own=own, domains=context.domains)
    return context, group


def _commit_group(mailbox, raws: list[bytes]) -> list[intake.Outcome]:
    context, group = _prepared(mailbox, raws)
    return intake.commit_many(group, context=context)


def test_a_group_writes_its_rows_in_a_fixed_number_of_statements(support, tenant):
    def statements(n: int, first: int) -> int:
        raws = [
            build_mail(
                sender=f"P{i} <p{i}@client.test>",
                subject=f"Mail {i}",
                attachments=[("a.txt", "text/plain", b"x")],
            )
            for i in range(first, first + n)
        ]
        context, group = _prepared(support, raws)
        with CaptureQueriesContext(connection) as queries:
            outcomes = intake.commit_many(group, context=context)
        assert [o.kind for o in outcomes] == ["new-ticket"] * n
        return len(queries)

    statements(1, 0)  # the tenant's first mail also creates its email settings
    few, many = statements(3, 10), statements(12, 100)

    assert few == many <= 12, "the statements grow with the group's size"
    assert Ticket.objects.filter(tenant=tenant).count() == 16
    tickets = Ticket.objects.filter(tenant=tenant).prefetch_related("messages__attachments")
    assert all(t.messages.get().attachments.count() == 1 for t in tickets)
    assert all(Participant.objects.filter(ticket=t, contact=t.requester).exists() for t in tickets)


def test_ticket_numbers_have_no_gaps_when_a_group_opens_fewer_tickets_than_it_holds(support, tenant):
    first = build_mail(sender="Ann <ann@client.test>", message_id="<first@client.test>")
    reply = build_mail(sender="Ann <ann@client.test>", in_reply_to="<first@client.test>")
    other = build_mail(sender="Bob <bob@client.test>")
    assert [o.kind for o in _commit_group(support, [first, reply, other])] == [
        "new-ticket",
        "reply",
        "new-ticket",
    ]

    # Numbers were reserved for the whole group of three; the unused one went back.
    later = _commit_group(
        support, [build_mail(sender="Cy <cy@client.test>"), build_mail(sender="Di <di@x.test>")]
    )

    assert [o.kind for o in later] == ["new-ticket", "new-ticket"]
    numbers = sorted(Ticket.objects.filter(tenant=tenant).values_list("number", flat=True))
    assert numbers == [1001, 1002, 1003, 1004]


def test_a_copied_person_answering_in_the_same_group_threads_in(support, tenant):
    """The participant written a moment ago is not in the database yet; the group knows it."""
    first = build_mail(sender="Ann <ann@client.test>", to="support@example.test, Carl <carl@client.test>",
                       message_id="<first@client.test>")  # fmt: skip
    by_carl = build_mail(sender="Carl <carl@client.test>", in_reply_to="<first@client.test>")
    by_stranger = build_mail(sender="Eve <eve@elsewhere.test>", in_reply_to="<first@client.test>")

    outcomes = _commit_group(support, [first, by_carl, by_stranger])

    assert [o.kind for o in outcomes] == ["new-ticket", "reply", "new-ticket"]
    assert outcomes[1].ticket_id == outcomes[0].ticket_id
    related = Ticket.objects.get(pk=outcomes[2].ticket_id)
    assert related.related_to_id == outcomes[0].ticket_id  # a non-participant gets a linked new ticket


def test_two_replies_in_one_group_reopen_a_solved_ticket_once(support, tenant):
    opened = _commit_group(
        support, [build_mail(sender="Ann <ann@client.test>", message_id="<a@client.test>")]
    )
    ticket = Ticket.objects.get(pk=opened[0].ticket_id)
    Ticket.objects.filter(pk=ticket.pk).update(status=Status.SOLVED, close_reason="fixed")
    replies = [
        build_mail(sender="Ann <ann@client.test>", in_reply_to="<a@client.test>", subject="Re: 1"),
        build_mail(sender="Ann <ann@client.test>", subject=f"Re: 2 {subject_tag(ticket)}"),
    ]

    outcomes = _commit_group(support, replies)

    assert [o.kind for o in outcomes] == ["reply", "reply"]
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN and ticket.close_reason == ""
    assert ticket.last_message_at == ticket.messages.order_by("pk").last().created_at
    events = TicketEvent.objects.filter(ticket=ticket, field="status")
    assert [(e.old, e.new) for e in events] == [(Status.SOLVED, Status.OPEN)]


def test_routing_in_a_group_sees_the_tickets_written_before_it(support, tenant, queue, agent):
    """Round robin reads and locks rows: the group writes what it holds first."""
    from accounts.models import Membership

    Membership.objects.filter(user=agent, tenant=tenant).update(is_available=True)
    queue.routing = RoutingMode.ROUND_ROBIN
    queue.save()
    queue.members.add(Membership.objects.get(user=agent, tenant=tenant))
    support.default_queue = queue
    support.save()

    outcomes = _commit_group(support, [build_mail(sender=f"P{i} <p{i}@client.test>") for i in range(3)])

    tickets = Ticket.objects.filter(pk__in=[o.ticket_id for o in outcomes])
    assert [t.assignee_id for t in tickets] == [agent.pk] * 3
    assert sorted(t.number for t in tickets) == [1001, 1002, 1003]
