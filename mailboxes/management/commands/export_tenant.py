"""python manage.py export_tenant --tenant SLUG --out FILE.json: the tenant's data, in a shape other tools read.

Keep the documented shape (issue 4); adding fields is fine, renaming or removing is not.
"""

import json
from collections import defaultdict

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Tenant
from mailboxes.models import InboundMessage, InboundStatus, OutboundEmail
from tickets.models import Attachment, Contact, Customer, Message, Participant, Ticket


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def export(tenant: Tenant) -> dict:
    """Everything the tenant owns that matters to a migration, as plain JSON-able data."""
    attachments = defaultdict(list)
    for a in Attachment.objects.filter(tenant=tenant).order_by("pk"):
        attachments[a.message_id].append(
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "inline": a.is_inline,
                "content_id": a.content_id or None,
                "storage_key": a.storage_key,
            }
        )
    messages = defaultdict(list)
    for m in Message.objects.filter(tenant=tenant).order_by("created_at", "pk"):
        messages[m.ticket_id].append(
            {
                "kind": m.kind,
                "from": m.from_addr,
                "from_name": m.from_name,
                "to": m.to,
                "cc": m.cc,
                "subject": m.subject,
                "date": _iso(m.sent_date or m.created_at),
                "message_id": m.message_id,
                "in_reply_to": m.in_reply_to,
                "references": m.references,
                "threading_signal": m.threading_signal,
                "text": m.text,
                "html": m.html,
                "attachments": attachments.get(m.pk, []),
            }
        )
    participants = defaultdict(list)
    for ticket_id, email in Participant.objects.filter(tenant=tenant).values_list(
        "ticket_id", "contact__email"
    ):
        participants[ticket_id].append(email)
    tickets = []
    for t in Ticket.objects.filter(tenant=tenant).select_related(
        "queue", "mailbox", "requester", "customer", "related_to"
    ):
        tickets.append(
            {
                "number": t.number,
                "title": t.title,
                "status": t.status,
                "priority": t.priority,
                "queue": t.queue.name if t.queue else None,
                "mailbox": t.mailbox.email if t.mailbox else None,
                "requester": t.requester.email if t.requester else None,
                "customer": t.customer.name if t.customer else None,
                "participants": sorted(participants.get(t.pk, [])),
                "tags": list(t.tags.values_list("name", flat=True)),
                "related_to": t.related_to.number if t.related_to else None,
                "created_at": _iso(t.created_at),
                "messages": messages.get(t.pk, []),
            }
        )
    tickets.sort(key=lambda t: t["number"])
    numbers = dict(Ticket.objects.filter(tenant=tenant).values_list("pk", "number"))
    inbound_rows = InboundMessage.objects.filter(tenant=tenant).select_related("mailbox").order_by("pk")
    return {
        "tenant": tenant.slug,
        "tickets": tickets,
        "contacts": [
            {"email": c.email, "name": c.name, "customer": c.customer.name if c.customer else None}
            for c in Contact.objects.filter(tenant=tenant).select_related("customer")
        ],
        "customers": [
            {"name": c.name, "domains": [d.domain for d in c.domains.all()]}
            for c in Customer.objects.filter(tenant=tenant).prefetch_related("domains")
        ],
        "quarantine": [
            {
                "reason": r.quarantine_reason,
                "message_id": r.message_id,
                "from": r.sender,
                "subject": r.subject,
                "size": r.size,
                "sha256": r.sha256,
            }
            for r in inbound_rows
            if r.status == InboundStatus.QUARANTINED
        ],
        "inbound": [
            {
                "mailbox": r.mailbox.email if r.mailbox else None,
                "folder": r.folder,
                "uidvalidity": r.uidvalidity,
                "uid": r.uid,
                "message_id": r.message_id,
                "sha256": r.sha256,
                "state": r.status,
                "outcome": r.outcome,
                "ticket": numbers.get(r.ticket_id),
                "history": r.is_history,
                "source": r.source,
            }
            for r in inbound_rows
        ],
        "outbound": [
            {
                "kind": o.kind,
                "to": o.to,
                "subject": o.subject,
                "status": o.status,
                "message_id": o.message_id,
                "ticket": numbers.get(o.ticket_id),
                "error": o.error_message,
            }
            for o in OutboundEmail.objects.filter(tenant=tenant).order_by("pk")
        ],
    }


class Command(BaseCommand):
    help = "Export a tenant's tickets, contacts, customers, quarantine and mail ledgers as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="The tenant's slug.")
        parser.add_argument("--out", required=True, help="Output file ('-' for stdout).")

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        data = json.dumps(export(tenant), ensure_ascii=False, indent=1)
        if options["out"] == "-":
            self.stdout.write(data)
        else:
            with open(options["out"], "w", encoding="utf-8") as f:
                f.write(data)
            self.stdout.write(f"exported {tenant.slug} to {options['out']}")
