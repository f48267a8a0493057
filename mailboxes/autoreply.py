"""The acknowledgement a customer gets for a new ticket, without ever feeding a mail loop.

Never to automatic mail (RFC 3834, bounces, out-of-office), no-reply senders, our own mailboxes or mail
imported as history; at most once per day per sender and mailbox (`AutoReplyLog`'s unique row decides,
so two workers cannot both send); and a per-tenant hourly cap stops storms. What we send carries
``Auto-Submitted: auto-replied`` and ``X-Auto-Response-Suppress: All`` so well-behaved servers do not answer.
It runs after the processing commit: a crash in between loses an acknowledgement, never duplicates one.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.template import Context, Template
from django.utils import timezone
from django.utils.html import escape

from mailboxes.models import AutoReplyLog, EmailSettings, InboundMessage, Mailbox

log = logging.getLogger(__name__)

HEADERS = {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}
DEFAULT_BODY = (
    "<p>Hello {{ contact.first_name|default:'there' }},</p>"
    "<p>Thank you for your message. We received it as request {{ ticket.reference }} "
    "and will get back to you soon.</p><p>{{ tenant.name }}</p>"
)


def precheck(
    *,
    mailbox: Mailbox | None,
    outcome: str,
    automatic_kind: str,
    sender: str,
    own_addresses: set[str],
    is_history: bool,
) -> str:
    """Why no auto-reply may go out ('' when one may, subject to the once-a-day rule and the hourly cap)."""
    from mailboxes.automatic import is_noreply_address

    if mailbox is None or not mailbox.autoreply_enabled:
        return "auto-reply is off for this mailbox"
    if is_history:
        return "imported as history"
    if automatic_kind:
        return f"automatic mail ({automatic_kind})"
    if outcome != "new-ticket":
        return "not a new ticket"
    if mailbox.close_automatically:
        return "the mailbox imports tickets as closed"
    if not sender:
        return "no sender address"
    if sender.lower() in own_addresses:
        return "the sender is one of our own mailboxes"
    if is_noreply_address(sender):
        return "no-reply sender"
    return ""


def send(inbound_id: int, ticket_id: int, sender: str) -> str:
    """Queue the auto-reply if the once-a-day rule and the hourly cap allow; returns what happened."""
    from tickets.models import Ticket

    inbound = InboundMessage.objects.select_related("mailbox", "tenant").get(pk=inbound_id)
    mailbox = inbound.mailbox
    ticket = Ticket.objects.select_related("tenant", "requester").get(pk=ticket_id)
    tenant = inbound.tenant
    now = timezone.now()
    with transaction.atomic():
        cap = EmailSettings.for_tenant(tenant).autoreply_hourly_cap
        sent_last_hour = AutoReplyLog.objects.filter(
            tenant=tenant, created_at__gte=now - timedelta(hours=1)
        ).count()
        if sent_last_hour >= cap:
            log.warning(
                "auto-reply cap (%s/hour) reached for tenant %s: not answering %s", cap, tenant.slug, sender
            )
            result = f"not sent: the hourly cap of {cap} auto-replies is reached"
        else:
            try:
                with transaction.atomic():
                    AutoReplyLog.objects.create(
                        tenant=tenant, mailbox=mailbox, sender=sender.lower(), day=now.date()
                    )
            except IntegrityError:
                result = "not sent: this sender already got one today"
            else:
                _queue(inbound, mailbox, ticket, sender)
                result = "queued"
        _note(inbound, result)
    return result


def _queue(inbound: InboundMessage, mailbox: Mailbox, ticket, sender: str) -> None:
    from mailboxes import outbound
    from tickets import threading
    from tickets.models import Message

    context = Context(
        {
            "ticket": ticket,
            "contact": ticket.requester,
            "customer": ticket.customer,
            "tenant": ticket.tenant,
            "mailbox": mailbox,
        },
        autoescape=False,
    )
    subject = Template(mailbox.autoreply_subject or "Re: {{ ticket.title }}").render(context).strip()
    subject = threading.with_subject_tag(" ".join(subject.split()), ticket)
    html_context = Context(context.flatten(), autoescape=True)
    body = mailbox.autoreply_body or DEFAULT_BODY
    if "<" not in body:  # a plain-text body: keep its lines
        body = "".join(f"<p>{escape(line)}</p>" for line in body.splitlines() if line.strip()) or body
    html = Template(body).render(html_context)
    from mailboxes.sanitize import html_to_text

    text = html_to_text(html)
    original = Message.objects.filter(inbound_id=inbound.pk).values_list("message_id", "references").first()
    in_reply_to, references = "", []
    if original:
        in_reply_to = original[0]
        references = [*list(original[1] or [])[-10:], original[0]]
    outbound.queue(
        tenant=ticket.tenant,
        mailbox=mailbox,
        kind="auto_reply",
        to=[sender],
        subject=subject,
        text=text,
        html=html,
        ticket=ticket,
        in_reply_to=in_reply_to,
        references=references,
        extra_headers=dict(HEADERS),
    )


def _note(inbound: InboundMessage, result: str) -> None:
    trace = list(inbound.trace or [])
    trace.append({"step": "auto-reply", "ms": 0, "note": result})
    InboundMessage.objects.filter(pk=inbound.pk).update(trace=trace)
