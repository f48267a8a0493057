"""Changing a ticket's fields, and the record of who changed what, when (the ticket's History tab).

Every change an agent makes goes through `change_ticket`, which saves the ticket and writes one TicketEvent
per field that really changed. Events store the values as people read them ("Billing", "Agnes Agent"), so the
history stays readable after a queue is renamed or a member leaves.
"""

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from tickets import search
from tickets.models import Priority, Status, Tag, Ticket, TicketEvent

EDITABLE = ("title", "status", "priority", "queue", "assignee", "tags")

FIELD_LABELS = {
    "title": "title",
    "status": "status",
    "priority": "priority",
    "queue": "queue",
    "assignee": "assignee",
    "tags": "tags",
    "merged_into": "merged into",
    "merged_from": "merged in",
    "split_to": "split a message into",
    "split_from": "split from",
    "requester": "requester",
    "read": "unread",
}


def _shown(field: str, value) -> str:
    if value is None or value == "":
        return ""
    if field == "status":
        return str(Status(value).label)
    if field == "priority":
        return str(Priority(value).label)
    if field == "tags":
        return ", ".join(sorted(t.name for t in value))
    if field == "assignee":
        return value.display_name
    return str(value)[:255]


def record(ticket: Ticket, actor, field: str, old: str = "", new: str = "") -> TicketEvent:
    """One line of history (for changes made outside change_ticket: merges, splits)."""
    return TicketEvent.objects.create(
        tenant_id=ticket.tenant_id, ticket=ticket, actor=actor, field=field, old=old[:255], new=new[:255]
    )


@transaction.atomic
def change_ticket(ticket: Ticket, *, actor, **values) -> list[TicketEvent]:
    """Set the given fields (any of EDITABLE); each real change is saved and recorded as a TicketEvent."""
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise ValueError(f"Not editable: {', '.join(sorted(unknown))}")
    events: list[TicketEvent] = []
    now = timezone.now()
    changed: list[str] = []
    for name, new in values.items():
        if name == "tags":
            old_tags = set(ticket.tags.all())
            new_tags = set(new)
            if old_tags != new_tags:
                ticket.tags.set(new_tags)
                events.append(
                    record(ticket, actor, "tags", _shown("tags", old_tags), _shown("tags", new_tags))
                )
            continue
        if name == "title":
            new = " ".join((new or "").split())[:998]
            if not new:
                continue
        old = getattr(ticket, name)
        if old == new:
            continue
        setattr(ticket, name, new)
        changed.append(name)
        events.append(record(ticket, actor, name, _shown(name, old), _shown(name, new)))
        if name == "status":
            changed += _status_timestamps(ticket, new, now)
    if events:
        ticket.updated_at = now
        ticket.save(update_fields=[*dict.fromkeys(changed), "updated_at"])
        if "title" in changed:
            search.reindex(ticket)
    return events


def _status_timestamps(ticket: Ticket, status: str, now) -> list[str]:
    if status == Status.SOLVED:
        ticket.solved_at = now
        return ["solved_at"]
    if status == Status.CLOSED:
        ticket.closed_at = now
        return ["closed_at"]
    ticket.solved_at = ticket.closed_at = None
    return ["solved_at", "closed_at"]


def bulk_change(tickets: Iterable[Ticket], *, actor, **values) -> int:
    """change_ticket on each ticket; returns how many actually changed."""
    return sum(1 for ticket in tickets if change_ticket(ticket, actor=actor, **values))


def add_tag(ticket: Ticket, tag: Tag, *, actor) -> bool:
    """Add one tag, keeping the others; True if it was not there yet."""
    current = set(ticket.tags.all())
    if tag in current:
        return False
    change_ticket(ticket, actor=actor, tags=current | {tag})
    return True


def events(ticket: Ticket):
    """The ticket's history, oldest first, with actors."""
    return TicketEvent.objects.filter(ticket=ticket).select_related("actor").order_by("created_at", "id")
