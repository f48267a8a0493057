"""The tenant's tags as a vocabulary: create, rename, merge two into one, delete.

Tickets keep their tags through the many-to-many table, so a rename shows everywhere at once, and a merge
moves every ticket of the old tag to the new one (a ticket that had both keeps one) before the old goes.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count

from accounts.models import Tenant
from tickets.models import Tag, Ticket


@dataclass(frozen=True)
class TagRow:
    tag: Tag
    tickets: int


def clean_name(name: str) -> str:
    """Tags are single words or short phrases: trimmed, inner whitespace collapsed."""
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError("Give the tag a name.")
    if len(name) > Tag._meta.get_field("name").max_length:
        raise ValidationError("Keep tag names under 60 characters.")
    return name


def _taken(tenant: Tenant, name: str, *, exclude: Tag | None = None) -> bool:
    qs = Tag.objects.for_tenant(tenant).filter(name__iexact=name)
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    return qs.exists()


def rows(tenant: Tenant) -> list[TagRow]:
    """Every tag with the number of tickets carrying it (one query)."""
    tags = Tag.objects.for_tenant(tenant).annotate(n=Count("tickets")).order_by("name")
    return [TagRow(tag=t, tickets=t.n) for t in tags]


def create(tenant: Tenant, name: str) -> Tag:
    """A new tag; refuses a name that exists (in any letter case)."""
    name = clean_name(name)
    if _taken(tenant, name):
        raise ValidationError(f"There is already a tag “{name}”.")
    return Tag.objects.create(tenant=tenant, name=name)


def rename(tag: Tag, name: str) -> Tag:
    """Rename a tag; to fold it into an existing one, use merge."""
    name = clean_name(name)
    if _taken(tag.tenant, name, exclude=tag):
        raise ValidationError(f"There is already a tag “{name}”. Merge the two instead.")
    tag.name = name
    tag.save(update_fields=["name"])
    return tag


@transaction.atomic
def merge(source: Tag, target: Tag) -> int:
    """Move every ticket of `source` to `target` and delete `source`; returns how many tickets moved."""
    if source.pk == target.pk:
        raise ValidationError("Choose another tag to merge into.")
    if source.tenant_id != target.tenant_id:
        raise ValidationError("Tags of different workspaces cannot be merged.")
    through = Ticket.tags.through
    ticket_ids = list(through.objects.filter(tag=source).values_list("ticket_id", flat=True))
    through.objects.bulk_create(
        [through(ticket_id=t, tag_id=target.pk) for t in ticket_ids], ignore_conflicts=True
    )
    source.delete()
    return len(ticket_ids)


def delete(tag: Tag) -> int:
    """Delete the tag; tickets lose it. Returns how many tickets had it."""
    n = tag.tickets.count()
    tag.delete()
    return n
