"""Ticket lists: the named views, filters that combine, sorting and keyset pagination, counters, unread.

The API the views use:
    VIEWS, SORTS                                  what the sidebar and the sort menu offer
    ticket_rows(membership, view=..., ...)        one page of rows, annotated and prefetched
    view_counts(membership)                       counters for the sidebar (two queries)
    changed_since(membership, since)              the cheap check behind live updates
    keyset_page(qs, keys, after, size)            the generic keyset paginator (contacts use it too)

Pages are found by keyset ("rows after this one in this order"), never OFFSET: deep pages cost the same as
the first, and rows inserted meanwhile (new tickets sort first) do not shift the pages after a cursor.
"""

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db.models import Count, Exists, Max, Model, OuterRef, Q, QuerySet
from django.utils import timezone

from accounts.models import Membership
from tickets import search
from tickets.access import attach_known
from tickets.models import OPEN_STATUSES, Queue, Status, Ticket, TicketRead

PAGE_SIZE = 50

# --- views ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class View:
    key: str
    label: str
    q: Any  # a function (membership) -> Q


VIEWS: dict[str, View] = {
    v.key: v
    for v in [
        View("mine", "My open", lambda m: Q(status__in=OPEN_STATUSES, assignee=m.user_id)),
        View("unassigned", "Unassigned", lambda m: Q(status__in=OPEN_STATUSES, assignee__isnull=True)),
        View("open", "All open", lambda m: Q(status__in=OPEN_STATUSES)),
        View("pending", "Pending", lambda m: Q(status=Status.PENDING)),
        View("solved", "Solved", lambda m: Q(status__in=[Status.SOLVED, Status.CLOSED])),
        View("all", "All tickets", lambda m: Q()),
    ]
}
DEFAULT_VIEW = "mine"

# --- sorting -------------------------------------------------------------------------------------------------

Keys = list[tuple[str, bool]]  # (field, descending); the last key is unique, so the order is total


@dataclass(frozen=True)
class Sort:
    key: str
    label: str
    keys: Keys


SORTS: dict[str, Sort] = {
    s.key: s
    for s in [
        Sort("activity", "Last activity", [("last_message_at", True), ("id", True)]),
        Sort("newest", "Newest first", [("created_at", True), ("id", True)]),
        Sort("oldest", "Oldest first", [("created_at", False), ("id", False)]),
        Sort("priority", "Priority", [("priority", True), ("last_message_at", True), ("id", True)]),
        Sort("updated", "Recently updated", [("updated_at", True), ("id", True)]),
    ]
}
DEFAULT_SORT = "activity"

# --- keyset pagination ---------------------------------------------------------------------------------------


@dataclass
class Page:
    rows: list
    next_cursor: str | None
    has_more: bool
    is_first: bool


def encode_cursor(row: Model, keys: Keys) -> str:
    values = []
    for name, _ in keys:
        value = getattr(row, name)
        values.append(value.isoformat() if isinstance(value, dt.datetime | dt.date) else value)
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, model: type[Model], keys: Keys) -> list | None:
    """The key values of a cursor, typed by the model's fields; None for a missing or broken cursor."""
    if not cursor:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(keys):
            return None
        values = [_typed(model, name, value) for (name, _), value in zip(keys, raw, strict=True)]
    except (ValueError, TypeError, binascii.Error, ValidationError, FieldDoesNotExist):
        return None
    return None if any(v is None for v in values) else values


def _typed(model: type[Model], name: str, value):
    if name in ANNOTATED_KEYS:
        return int(value)
    return model._meta.get_field(name).to_python(value)


# Sort keys that are annotations rather than fields (integers): the queue's "replies first" rank.
ANNOTATED_KEYS = {"reply_rank"}
REPLIES_FIRST: Keys = [("reply_rank", False), ("last_message_at", True), ("id", True)]


def after(keys: Keys, values: list) -> Q:
    """Rows strictly after `values` in the order `keys`: (a < x) or (a = x and b < y) or ...

    Plus the redundant bound a <= x: PostgreSQL cannot start an index scan at an OR of conditions, so
    without it a deep page reads every index entry before the cursor; with it, deep pages cost what the first
    page costs.
    """
    condition = Q(pk__in=[])
    equal: dict[str, Any] = {}
    for (name, desc), value in zip(keys, values, strict=True):
        condition |= Q(**equal, **{f"{name}__{'lt' if desc else 'gt'}": value})
        equal[name] = value
    (first, desc), value = keys[0], values[0]
    return Q(**{f"{first}__{'lte' if desc else 'gte'}": value}) & condition


def order_by(keys: Keys) -> list[str]:
    return [f"-{name}" if desc else name for name, desc in keys]


def keyset_page(
    qs: QuerySet,
    keys: Keys,
    cursor: str | None,
    size: int = PAGE_SIZE,
    *,
    load: Callable[[QuerySet], QuerySet] | None = None,
) -> Page:
    """One page of `qs` in the order `keys`, starting after `cursor` (one query, no OFFSET).

    `load`, if given, turns the page's primary keys (a subquery) into the queryset of rows to show. The
    filters and the order then run on the bare table and stop after one page, and what the rows carry
    (joins, annotations) is computed for that page only: PostgreSQL would otherwise join every matching
    row before sorting and cutting.
    """
    values = decode_cursor(cursor, qs.model, keys)
    if values is not None:
        qs = qs.filter(after(keys, values))
    qs = qs.order_by(*order_by(keys))[: size + 1]
    if load is not None:
        qs = load(qs.values("pk")).order_by(*order_by(keys))
    rows = list(qs)
    has_more = len(rows) > size
    rows = rows[:size]
    return Page(
        rows=rows,
        next_cursor=encode_cursor(rows[-1], keys) if has_more else None,
        has_more=has_more,
        is_first=values is None,
    )


# --- filters -------------------------------------------------------------------------------------------------


@dataclass
class Filters:
    """What the filter bar chose; empty fields filter nothing. Within a field values are alternatives (OR),
    across fields they all apply (AND)."""

    status: list[str] = field(default_factory=list)
    priority: list[int] = field(default_factory=list)
    queue: list[int] = field(default_factory=list)  # 0 = no queue
    mailbox: list[int] = field(default_factory=list)
    assignee: list[int] = field(default_factory=list)  # 0 = unassigned
    tag: list[int] = field(default_factory=list)
    unread: bool | None = None
    customer: int | None = None
    created_from: dt.date | None = None
    created_to: dt.date | None = None
    updated_from: dt.date | None = None
    updated_to: dt.date | None = None
    q: str = ""


def _start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _ids_or_none(field_name: str, ids: list[int]) -> Q:
    real = [i for i in ids if i]
    q = Q(**{f"{field_name}__in": real}) if real else Q(pk__in=[])
    if 0 in ids:
        q |= Q(**{f"{field_name}__isnull": True})
    return q


def unread_q(membership: Membership) -> Q:
    """Tickets with activity since this member last read them (or never read)."""
    return ~Q(Exists(_read_rows(membership)))


def _read_rows(membership: Membership) -> QuerySet:
    return TicketRead.objects.filter(
        ticket=OuterRef("pk"), user=membership.user_id, read_at__gte=OuterRef("last_message_at")
    )


def apply_filters(qs: QuerySet, f: Filters, membership: Membership) -> QuerySet:
    """`qs` narrowed by every chosen filter."""
    if f.status:
        qs = qs.filter(status__in=f.status)
    if f.priority:
        qs = qs.filter(priority__in=f.priority)
    if f.queue:
        qs = qs.filter(_ids_or_none("queue", f.queue))
    if f.mailbox:
        qs = qs.filter(mailbox__in=f.mailbox)
    if f.assignee:
        qs = qs.filter(_ids_or_none("assignee", f.assignee))
    if f.tag:
        # EXISTS instead of a join: a ticket with two chosen tags must not appear twice.
        tagged = Ticket.tags.through.objects.filter(ticket=OuterRef("pk"), tag__in=f.tag)
        qs = qs.filter(Exists(tagged))
    if f.unread is True:
        qs = qs.filter(unread_q(membership))
    elif f.unread is False:
        qs = qs.exclude(unread_q(membership))
    if f.customer:
        qs = qs.filter(customer=f.customer)
    if f.created_from:
        qs = qs.filter(created_at__gte=_start_of(f.created_from))
    if f.created_to:
        qs = qs.filter(created_at__lt=_start_of(f.created_to + dt.timedelta(days=1)))
    if f.updated_from:
        qs = qs.filter(updated_at__gte=_start_of(f.updated_from))
    if f.updated_to:
        qs = qs.filter(updated_at__lt=_start_of(f.updated_to + dt.timedelta(days=1)))
    if f.q:
        qs = search.search(qs, f.q)
    return qs


# --- the list itself -----------------------------------------------------------------------------------------


def list_queryset(
    membership: Membership,
    *,
    view: str = DEFAULT_VIEW,
    queue: Queue | None = None,
    filters: Filters | None = None,
) -> QuerySet:
    """Visible tickets of a view (and queue), filtered; not yet sorted or paginated."""
    qs = Ticket.objects.visible_to(membership)
    if queue is not None:
        qs = qs.filter(queue=queue)
    qs = qs.filter(VIEWS[view].q(membership))
    return apply_filters(qs, filters or Filters(), membership)


def ticket_rows(
    membership: Membership,
    *,
    view: str = DEFAULT_VIEW,
    queue: Queue | None = None,
    filters: Filters | None = None,
    sort: str = DEFAULT_SORT,
    cursor: str | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    """One page of the list: rows carry mailbox, requester, assignee, queue, tags and `is_read`.

    Two queries, plus one when an assignee is no longer a member. A queue that puts customer replies first
    (Queue.replies_first) orders its own list that way by default.
    """
    qs = list_queryset(membership, view=view, queue=queue, filters=filters)
    keys = SORTS[sort].keys
    replies_first = queue is not None and queue.replies_first and sort == DEFAULT_SORT
    if replies_first:
        qs, keys = qs.replies_first(), REPLIES_FIRST

    def load(page_ids: QuerySet) -> QuerySet:
        rows = (
            Ticket.objects.filter(pk__in=page_ids)
            .select_related("requester")
            .annotate(is_read=Exists(_read_rows(membership)))
            .only(*ROW_FIELDS)
        )
        return rows.replies_first() if replies_first else rows

    page = keyset_page(qs, keys, cursor, size, load=load)
    attach_known(page.rows, membership)
    _attach_tag_names(page.rows)
    return page


# What a row shows and sorts by (and the SLA chip reads): the rest of a ticket's wide row stays in the table.
ROW_FIELDS = (
    "tenant_id",
    "number",
    "title",
    "status",
    "priority",
    "queue_id",
    "mailbox_id",
    "assignee_id",
    "customer_id",
    "merged_into_id",
    "last_message_inbound",
    "last_message_at",
    "first_response_at",
    "created_at",
    "updated_at",
    "requester__name",
    "requester__email",
)


def _attach_tag_names(rows: list[Ticket]) -> None:
    """Set each row's `tag_names` (sorted) from one query of (ticket, tag name) pairs: a prefetch of the Tag
    objects cost more than the rest of the page's rows."""
    names: dict[int, list[str]] = {row.pk: [] for row in rows}
    pairs = (
        Ticket.tags.through.objects.filter(ticket_id__in=list(names))
        .order_by("tag__name")
        .values_list("ticket_id", "tag__name")
    )
    for ticket_id, name in pairs:
        names[ticket_id].append(name)
    for row in rows:
        row.tag_names = names[row.pk]


COUNTS_CACHE_SECONDS = 60  # bounds staleness from changes that touch no timestamp (e.g. queue membership)


def cached_view_counts(membership: Membership) -> dict:
    """view_counts(), reused until any ticket of the tenant changes (one index lookup decides)."""
    stamps = Ticket.objects.filter(tenant_id=membership.tenant_id).aggregate(
        a=Max("updated_at"), b=Max("last_message_at"), c=Max("created_at")
    )
    version = "|".join(v.isoformat() if v else "-" for v in stamps.values())
    key = f"tickets:counts:{membership.pk}:{membership.role}:{version}"
    counts = cache.get(key)
    if counts is None:
        counts = view_counts(membership)
        cache.set(key, counts, COUNTS_CACHE_SECONDS)
    return counts


def view_counts(membership: Membership) -> dict:
    """{"views": {key: n}, "queues": {queue_id: n}}: open tickets per view and queue, in one grouped query.

    Only open tickets are counted (an index-only scan of ticket_counts_idx, hence COUNT of an indexed column
    rather than of the id); solved ones pile up forever and a count of them helps nobody.
    """
    user = membership.user_id
    rows = (
        Ticket.objects.visible_to(membership)
        .filter(status__in=OPEN_STATUSES)
        .values("queue")
        .annotate(
            open=Count("status"),
            mine=Count("status", filter=Q(assignee=user)),
            unassigned=Count("status", filter=Q(assignee__isnull=True)),
            pending=Count("status", filter=Q(status=Status.PENDING)),
        )
        .order_by()
    )
    views = dict.fromkeys(COUNTED_VIEWS, 0)
    queues = {}
    for row in rows:
        for key in COUNTED_VIEWS:
            views[key] += row[key]
        if row["queue"] is not None:
            queues[row["queue"]] = row["open"]
    return {"views": views, "queues": queues}


COUNTED_VIEWS = ("mine", "unassigned", "open", "pending")


def sidebar(membership: Membership) -> dict:
    """The views and visible queues with their counters, ready for the navigation template."""
    from tickets.access import visible_queue_list

    counts = cached_view_counts(membership)
    return {
        "views": [(v.key, v.label, counts["views"].get(v.key)) for v in VIEWS.values()],
        "queues": [(q, counts["queues"].get(q.pk, 0)) for q in visible_queue_list(membership)],
    }


def changed_since(membership: Membership, since: dt.datetime) -> bool:
    """Did any ticket this member sees change (new ticket, new message, field change) after `since`?"""
    return (
        Ticket.objects.visible_to(membership)
        .filter(Q(updated_at__gt=since) | Q(last_message_at__gt=since) | Q(created_at__gt=since))
        .exists()
    )


def mark_read(ticket: Ticket, user) -> None:
    """The member has seen the ticket as it is now (one upsert)."""
    TicketRead.objects.bulk_create(
        [TicketRead(tenant_id=ticket.tenant_id, ticket=ticket, user=user, read_at=timezone.now())],
        update_conflicts=True,
        unique_fields=["ticket", "user"],
        update_fields=["read_at"],
    )


def mark_unread(ticket: Ticket, user) -> None:
    """Show the ticket as unread to this member again, until they open it."""
    TicketRead.objects.filter(ticket=ticket, user=user).delete()
