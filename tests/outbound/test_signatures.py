"""Templates written by admins and agents run in a sandbox: simple variables only, nothing dangerous."""

from __future__ import annotations

import pytest

from mailboxes import signatures

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "source",
    [
        "{% debug %}",
        "{% load static %}",
        '{% include "base.html" %}',
        '{% extends "base.html" %}',
        "{% url 'login' %}",
        "{% for c in agent.name %}{% for d in agent.name %}x{% endfor %}{% endfor %}",
        "{% autoescape off %}{{ contact.name }}{% endautoescape %}",
        "{{ contact.name|safe }}",
        "{{ agent.name|ljust:100000000 }}",
        "{{ agent.__class__ }}",
        "{% csrf_token %}",
    ],
)
def test_dangerous_template_features_are_refused(source):
    assert signatures.check(source)
    with pytest.raises(signatures.TemplateProblem):
        signatures.render_text(source, {})


def test_variables_are_plain_values_of_the_people_and_the_ticket(tenant, ticket, agent):
    context = signatures.variables(tenant=tenant, agent=agent, ticket=ticket)
    text = signatures.render_text(
        "{{ agent.name }}/{{ agent.first_name }}/{{ agent.phone }}/{{ agent.fax|default:'-' }}/"
        "{{ ticket.reference }}/{{ ticket.queue }}/{{ contact.first_name }}/{{ agent.password }}{{ agent.pk }}",
        context,
    )
    assert text == f"Agnes Agent/Agnes/+1 555 0100/-/ACME-{ticket.number}/Support/Dana/"
    assert all(isinstance(v, (str, dict)) for v in context.values())


def test_html_output_escapes_customer_text():
    html = signatures.render_html(
        "<p>{{ contact.name }}</p>{{ content }}",
        {"contact": {"name": "<img src=x onerror=1>"}, "content": signatures.text_to_html("a < b")},
    )
    assert html == "<p>&lt;img src=x onerror=1&gt;</p>a &lt; b"


def test_signature_choice_agent_then_mailbox_then_workspace(tenant, mailbox, agent):
    assert signatures.signature_source(tenant=tenant, agent=agent, mailbox=mailbox) == agent.signature
    agent.signature = "  "
    mailbox.signature = "Mailbox sig"
    assert signatures.signature_source(tenant=tenant, agent=agent, mailbox=mailbox) == "Mailbox sig"
    mailbox.signature = ""
    assert (
        signatures.signature_source(tenant=tenant, agent=agent, mailbox=mailbox)
        == "{{ agent.name }}\n{{ tenant.name }}"
    )
