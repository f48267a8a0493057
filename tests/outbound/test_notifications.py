"""Notification mail: default wording in the tenant's language, the tenant's own templates, agents'
preferences, and the Auto-Submitted header on every one of them."""

from __future__ import annotations

import email
import email.policy

import pytest

from mailboxes.models import OutboundEmail
from tickets import notifications, threading
from tickets.models import Message, MessageKind, NotificationPreference, NotificationTemplate

pytestmark = pytest.mark.django_db


def sent(smtp):
    return email.message_from_bytes(smtp.messages[-1].data, policy=email.policy.strict)


def test_new_ticket_confirmation_answers_the_customer_mail(ticket, smtp, django_capture_on_commit_callbacks):
    inbound = Message.objects.get(ticket=ticket, kind=MessageKind.INBOUND)
    with django_capture_on_commit_callbacks(execute=True):
        row = notifications.new_ticket_confirmation(ticket, inbound)
    row.refresh_from_db()
    assert row.kind == "auto_reply" and row.status == "sent"
    message = sent(smtp)
    assert message["Auto-Submitted"] == "auto-replied" and message["X-Auto-Response-Suppress"] == "All"
    assert (
        message["Subject"]
        == f"We received your request: Printer does not print {threading.subject_tag(ticket)}"
    )
    assert message["In-Reply-To"] == inbound.message_id
    body = message.get_body(("plain",)).get_content()
    assert "Hello Dana," in body and f"ACME-{ticket.number}" in body


def test_defaults_follow_the_tenant_language(tenant, ticket, smtp, django_capture_on_commit_callbacks):
    tenant.language = "de"
    tenant.save()
    with django_capture_on_commit_callbacks(execute=True):
        notifications.ticket_solved(ticket)
    message = sent(smtp)
    assert message["Subject"].startswith("Ihre Anfrage ist gelöst: Printer does not print [#ACME-")
    assert message["Auto-Submitted"] == "auto-generated"


def test_the_tenants_own_template_is_used_and_can_be_switched_off(
    tenant, ticket, smtp, django_capture_on_commit_callbacks
):
    NotificationTemplate.objects.create(
        tenant=tenant,
        kind="resolution",
        subject="Done: {{ ticket.reference }}",
        body="Bye {{ contact.name }}!",
    )
    with django_capture_on_commit_callbacks(execute=True):
        notifications.ticket_solved(ticket)
    message = sent(smtp)
    assert message["Subject"] == f"Done: ACME-{ticket.number} {threading.subject_tag(ticket)}"
    assert message.get_body(("plain",)).get_content().strip() == "Bye Dana Customer!"
    NotificationTemplate.objects.filter(tenant=tenant).update(enabled=False)
    assert notifications.ticket_solved(ticket) is None


def test_agent_notifications_respect_preferences(
    tenant, ticket, agent, admin, smtp, django_capture_on_commit_callbacks
):
    ticket.assignee = agent
    ticket.save()
    inbound = Message.objects.get(ticket=ticket, kind=MessageKind.INBOUND)
    with django_capture_on_commit_callbacks(execute=True):
        row = notifications.customer_replied(ticket, inbound)
    assert row.to == ["agnes@acme.test"]
    message = sent(smtp)
    assert message["Auto-Submitted"] == "auto-generated"
    assert "It says paper jam." in message.get_body(("plain",)).get_content()
    assert (
        threading.subject_tag(ticket) not in message["Subject"]
    )  # agents' alerts do not thread into tickets

    NotificationPreference.objects.create(tenant=tenant, user=agent, reply_on_my_ticket=False)
    assert notifications.customer_replied(ticket, inbound) is None
    assert notifications.assigned(ticket, agent, actor=admin) is not None  # other kinds still on
    assert notifications.assigned(ticket, agent, actor=agent) is None  # not for assigning yourself
    assert OutboundEmail.objects.filter(kind="notification").count() == 2


def test_templates_render_a_live_preview_and_report_mistakes(tenant, agent):
    preview = notifications.preview(
        tenant, "Hi {{ contact.first_name }}", "Ticket {{ ticket.reference }}", agent
    )
    assert preview.subject == "Hi Dana" and preview.text == "Ticket ACME-1042"
    from mailboxes import signatures

    with pytest.raises(signatures.TemplateProblem):
        notifications.preview(tenant, "{% include 'x' %}", "")
