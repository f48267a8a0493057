"""Intake hands new tickets and customer replies to the queue's routing."""

from __future__ import annotations

from django.utils import timezone

from accounts.models import Membership
from mailboxes import inbound
from tests.inbound.conftest import build_mail, make_mailbox
from tickets import intake
from tickets.models import Queue, RoutingMode, Ticket


def _receive(mailbox, raw: bytes):
    return intake.receive(inbound.record_raw(raw, mailbox=mailbox), raw)


def test_new_ticket_from_mail_is_assigned_round_robin_to_an_available_member(
    tenant, agent, admin, s3_storage
):
    queue = Queue.objects.create(tenant=tenant, name="Support", routing=RoutingMode.ROUND_ROBIN)
    queue.members.set(Membership.objects.filter(tenant=tenant))
    mailbox = make_mailbox(tenant, default_queue=queue)

    _receive(mailbox, build_mail(subject="First"))
    _receive(mailbox, build_mail(subject="Second"))

    assignees = list(Ticket.objects.for_tenant(tenant).order_by("number").values_list("assignee", flat=True))
    assert None not in assignees
    assert sorted(assignees) == sorted([agent.pk, admin.pk])


def test_history_import_is_not_routed(tenant, agent, s3_storage):
    queue = Queue.objects.create(tenant=tenant, name="Support", routing=RoutingMode.ROUND_ROBIN)
    queue.members.set(Membership.objects.filter(tenant=tenant))
    mailbox = make_mailbox(tenant, default_queue=queue, connected_at=timezone.now())
    raw = build_mail(subject="Old mail")
    row = inbound.record_raw(raw, mailbox=mailbox)
    row.is_history = True
    row.save(update_fields=["is_history"])

    intake.receive(row, raw)

    assert Ticket.objects.for_tenant(tenant).get().assignee is None
