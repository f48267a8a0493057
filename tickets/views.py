"""Agent views of tickets: the lists, bulk actions, and the ticket with its thread and side panel.

Every view fetches through tickets.access (404 for what the member may not see) and hands the work to a
domain module: lists, history, merge, thread, search. Contacts and customers are in views_people.py, message
bodies, originals and attachments in views_files.py.
"""

import datetime as dt

from django.contrib import messages as flash
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts.access import member_required, tenant_reverse
from helpdesk.widget_html import WIDGETS, preloaded_choices
from tickets import customers, history, lists, merge, sla, thread
from tickets.access import (
    can_edit,
    get_message,
    get_queue,
    get_ticket,
    member_list,
    require_editor,
    visible_queue_list,
)
from tickets.forms import (
    BulkForm,
    MergeForm,
    NewTagForm,
    NoteForm,
    TicketFieldsForm,
    TicketFilterForm,
    TitleForm,
)
from tickets.models import OPEN_STATUSES, Customer, Status, Tag, Ticket

# Live updates look back a little further than the last render: a transaction that started before it
# may commit after it, with timestamps from before.
LIVE_MARGIN = dt.timedelta(seconds=3)
POLL_SECONDS = 5


def _is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _query_without(request, *names: str) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


# --- lists ---------------------------------------------------------------------------------------------------


@member_required
def inbox(request):
    return _ticket_list(request, view=lists.DEFAULT_VIEW)


@member_required
def ticket_list(request, view: str):
    if view not in lists.VIEWS:
        raise Http404("No such view.")
    return _ticket_list(request, view=view)


@member_required
def queue_list(request, queue_id: int):
    return _ticket_list(request, view="open", queue=get_queue(request, queue_id))


def _list_context(request, *, view: str, queue=None) -> dict:
    form = TicketFilterForm(request.GET, membership=request.membership)
    filters = form.filters()
    page = lists.ticket_rows(
        request.membership,
        view=view,
        queue=queue,
        filters=filters,
        sort=form.chosen_sort,
        cursor=request.GET.get("after"),
    )
    customer_name = None
    if filters.customer:
        customer_name = (
            Customer.objects.for_tenant(request.tenant)
            .filter(pk=filters.customer)
            .values_list("name", flat=True)
            .first()
        )
    chips = [
        (label, _remove_param(request, name, value))
        for label, name, value in form.active(customer_name=customer_name)
    ]
    # One reverse() for the whole page instead of one per row.
    prefix = tenant_reverse(request.tenant, "tickets:detail", 1).removesuffix("1/")
    for row in page.rows:
        row.url = f"{prefix}{row.number}/"
    # The SLA chip: computed from the rows' own columns and the tenant's policies (no query per row).
    show_sla = sla.attach_next_due(page.rows, request.tenant)
    base_query = _query_without(request, "after")
    nav = lists.sidebar(request.membership)
    return {
        "nav": nav,
        "nav_view": view,
        "nav_queue": queue.pk if queue else None,
        # Asked only by the empty state, so it costs a query only when the list is empty.
        "has_tickets": lambda: Ticket.objects.filter(tenant=request.tenant).exists(),
        "keep_params": [
            (k, v) for k, values in request.GET.lists() if k not in ("sort", "after") for v in values
        ],
        "view": view,
        "view_label": queue.name if queue else lists.VIEWS[view].label,
        "queue": queue,
        "page": page,
        "show_sla": show_sla,
        "form": form,
        "chips": chips,
        "sorts": lists.SORTS.values(),
        "sort": form.chosen_sort,
        "base_query": base_query,
        "poll_query": _poll_query(request, view, queue),
        "can_edit": can_edit(request.membership),
        "bulk_form": BulkForm(membership=request.membership) if can_edit(request.membership) else None,
        "poll_seconds": POLL_SECONDS,
    }


def _ticket_list(request, *, view: str, queue=None):
    return render(request, "tickets/list.html", _list_context(request, view=view, queue=queue))


def _poll_query(request, view: str, queue) -> str:
    query = request.GET.copy()
    query.pop("after", None)
    query["view"] = view
    if queue is not None:
        query["queue_id"] = str(queue.pk)
    query["since"] = (timezone.now() - LIVE_MARGIN).isoformat()
    return query.urlencode()


def _remove_param(request, name: str, value: str) -> str:
    query = request.GET.copy()
    query.pop("after", None)
    if value:
        query.setlist(name, [v for v in query.getlist(name) if v != value])
    else:
        query.pop(name, None)
    return f"?{query.urlencode()}" if query else "?"


@require_GET
@member_required
def changes(request):
    """The live-update poll of a list: 204 when nothing the member sees changed, else the fresh first page."""
    try:
        since = dt.datetime.fromisoformat(request.GET.get("since", ""))
    except ValueError:
        since = timezone.now() - LIVE_MARGIN
    if timezone.is_naive(since):
        since = timezone.make_aware(since)
    if not lists.changed_since(request.membership, since):
        return HttpResponse(status=204)
    view = request.GET.get("view", lists.DEFAULT_VIEW)
    if view not in lists.VIEWS:
        raise Http404("No such view.")
    queue = (
        get_queue(request, int(request.GET["queue_id"]))
        if request.GET.get("queue_id", "").isdigit()
        else None
    )
    # The poll carries the list's own query string; rebuild the list as it would render now.
    request.GET = request.GET.copy()
    for name in ("view", "queue_id", "since"):
        request.GET.pop(name, None)
    context = _list_context(request, view=view, queue=queue)
    html = render_to_string("tickets/list.html#live", context, request)
    html += render_to_string("tickets/_nav.html", {**context, "oob": True}, request)
    return HttpResponse(html)


@require_POST
@member_required
def bulk(request):
    """Apply one action to the ticked tickets the member may see, then go back to the list."""
    require_editor(request.membership)
    form = BulkForm(request.POST, membership=request.membership)
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}) or not back.startswith(
        "/"
    ):
        back = tenant_reverse(request.tenant, "tickets:inbox")
    if not form.is_valid():
        flash.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return HttpResponseRedirect(back)
    data = form.cleaned_data
    tickets = list(
        Ticket.objects.visible_to(request.membership).filter(pk__in=data["ids"]).order_by("created_at", "id")
    )
    done = _bulk_apply(request, data, tickets)
    if done is not None:
        flash.success(request, done)
    return HttpResponseRedirect(back)


def _bulk_apply(request, data: dict, tickets: list[Ticket]) -> str | None:
    action, user, n = data["action"], request.user, len(tickets)
    plural = "ticket" if n == 1 else "tickets"
    if action == "assign":
        assignee = _member_user(request, data["assignee"]) if data["assignee"] else None
        changed = history.bulk_change(tickets, actor=user, assignee=assignee)
        return f"Assigned {changed} {plural}."
    if action == "status":
        changed = history.bulk_change(tickets, actor=user, status=data["status"])
        return f"{Status(data['status']).label}: {changed} {plural}."
    if action == "tag":
        tag, _ = Tag.objects.get_or_create(tenant=request.tenant, name=data["tag"].strip())
        changed = sum(history.add_tag(t, tag, actor=user) for t in tickets)
        return f"Tagged {changed} {plural} “{tag.name}”."
    if action == "queue":
        queue = get_queue(request, data["queue"]) if data["queue"] else None
        changed = history.bulk_change(tickets, actor=user, queue=queue)
        return f"Moved {changed} {plural} to {queue.name if queue else 'no queue'}."
    if action == "merge":
        if n < 2:
            flash.error(request, "Select at least two tickets you can see to merge.")
            return None
        target, *sources = tickets
        try:
            with transaction.atomic():
                for source in sources:
                    merge.merge_tickets(source, target, actor=user)
        except merge.MergeError as exc:
            flash.error(request, str(exc))
            return None
        return f"Merged {len(sources)} {'ticket' if len(sources) == 1 else 'tickets'} into #{target.number}."
    if action == "read":
        for t in tickets:
            lists.mark_read(t, user)
        return f"Marked {n} {plural} as read."
    for t in tickets:
        lists.mark_unread(t, user)
    return f"Marked {n} {plural} as unread."


def _member_user(request, user_id: int):
    from accounts.models import Membership

    membership = (
        Membership.objects.for_tenant(request.tenant).select_related("user").filter(user_id=user_id).first()
    )
    if membership is None:
        raise Http404("No such member.")
    return membership.user


# --- one ticket ----------------------------------------------------------------------------------------------


@require_GET
@member_required
def detail(request, number: int):
    ticket = get_ticket(request, number)
    from tickets.views_compose import composer_context

    context = detail_context(request, ticket)
    context.update(composer_context(request, ticket, context["entries"]))
    lists.mark_read(ticket, request.user)
    return render(request, "tickets/detail.html", context)


def detail_context(request, ticket: Ticket) -> dict:
    """Everything the ticket page shows (the composer adds its own form: tickets.views_compose)."""
    # Authors from the request's member list (the side panel and the composer load it anyway).
    membership = request.membership
    entries = thread.for_display(ticket, users={m.user_id: m.user for m in member_list(membership)})
    tab = "history" if request.GET.get("tab") == "history" else "thread"
    return {
        "ticket": ticket,
        "entries": entries,
        "tab": tab,
        "events": list(history.events(ticket)) if tab == "history" else None,
        **_side_context(request, ticket),
        "attachment_prefix": tenant_reverse(request.tenant, "tickets:attachment", 1).removesuffix("1/"),
        "merge_form": MergeForm(),
        "nav": lists.sidebar(request.membership),
        "nav_view": None,
    }


def _side_context(request, ticket: Ticket, form: TicketFieldsForm | None = None) -> dict:
    membership = request.membership
    requester = ticket.requester
    customer = ticket.customer or (requester.customer if requester else None)
    others = []
    if requester is not None:
        # The panel shows number, title, status and age: no mailbox or assignee rows joined in.
        others = list(
            customers.contact_tickets(membership, requester)
            .exclude(pk=ticket.pk)
            .select_related(None)
            .only("number", "title", "status", "last_message_at")[:5]
        )
    customer_open = None
    if customer is not None:
        customer_open = (
            customers.customer_tickets(membership, customer).filter(status__in=OPEN_STATUSES).count()
        )
    editable = can_edit(membership)
    if editable:  # light agents see the values, not the form
        form = _panel_form(membership, form or TicketFieldsForm(membership=membership, ticket=ticket))
    return {
        "ticket": ticket,
        "customer_open": customer_open,
        "editable": editable,
        "fields_form": form,
        "requester": requester,
        "customer": customer,
        "other_tickets": others,
    }


def _panel_form(membership, form: TicketFieldsForm) -> TicketFieldsForm:
    """The side panel's form, made cheap to show: its selects and tag checkboxes written in Python
    (helpdesk.widget_html), its queues from the request's list (the sidebar's) instead of another query."""
    form.renderer = WIDGETS
    queue = form.fields["queue"]
    queue.choices = preloaded_choices(queue, visible_queue_list(membership))
    return form


@require_POST
@member_required
def update_fields(request, number: int):
    """The side panel saves itself on every change (htmx); each change becomes a history event."""
    ticket = get_ticket(request, number, write=True)
    form = TicketFieldsForm(request.POST, membership=request.membership)
    saved = False
    if form.is_valid():
        saved = bool(history.change_ticket(ticket, actor=request.user, **form.changes()))
        form = None
        if not Ticket.objects.visible_to(request.membership).filter(pk=ticket.pk).exists():
            flash.info(request, f"#{ticket.number} moved to a queue you do not see.")
            return _redirect_htmx(request, tenant_reverse(request.tenant, "tickets:inbox"))
    if not _is_htmx(request):
        return redirect(ticket)
    context = {**_side_context(request, ticket, form), "saved": saved}
    return render(request, "tickets/detail.html#fields", context)


def _redirect_htmx(request, url: str) -> HttpResponse:
    if _is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)


@require_POST
@member_required
def update_title(request, number: int):
    ticket = get_ticket(request, number, write=True)
    form = TitleForm(request.POST)
    if form.is_valid():
        history.change_ticket(ticket, actor=request.user, title=form.cleaned_data["title"])
    else:
        flash.error(request, "A ticket needs a title.")
    return redirect(ticket)


@require_POST
@member_required
def new_tag(request, number: int):
    """Create a tag (or reuse one of that name) and add it to the ticket."""
    ticket = get_ticket(request, number, write=True)
    form = NewTagForm(request.POST)
    if form.is_valid():
        tag, _ = Tag.objects.get_or_create(tenant=request.tenant, name=form.cleaned_data["name"])
        history.add_tag(ticket, tag, actor=request.user)
    if _is_htmx(request):
        return render(
            request, "tickets/detail.html#fields", {**_side_context(request, ticket), "saved": True}
        )
    return redirect(ticket)


@require_POST
@member_required
def add_note(request, number: int):
    """Internal notes: every member who sees the ticket may write one, light agents included."""
    ticket = get_ticket(request, number)
    form = NoteForm(request.POST)
    if not form.is_valid():
        flash.error(request, form.errors["body"][0])
        return redirect(ticket)
    note = thread.add_note(ticket, author=request.user, body=form.cleaned_data["body"])
    return HttpResponseRedirect(f"{ticket.get_absolute_url()}#m-{note.pk}")


@require_POST
@member_required
def mark_unread(request, number: int):
    ticket = get_ticket(request, number)
    lists.mark_unread(ticket, request.user)
    flash.success(request, f"#{ticket.number} is unread again.")
    return redirect("tickets:inbox", tenant_slug=request.tenant.slug)


@require_POST
@member_required
def merge_ticket(request, number: int):
    """Merge this ticket into the one named in the form; the survivor opens afterwards."""
    source = get_ticket(request, number, write=True)
    form = MergeForm(request.POST)
    if not form.is_valid():
        flash.error(request, form.errors["target"][0])
        return redirect(source)
    target = Ticket.objects.visible_to(request.membership).filter(number=form.cleaned_data["target"]).first()
    if target is None:
        flash.error(request, f"There is no ticket #{form.cleaned_data['target']} that you can see.")
        return redirect(source)
    try:
        merge.merge_tickets(source, merge.final_target(target), actor=request.user)
    except merge.MergeError as exc:
        flash.error(request, str(exc))
        return redirect(source)
    flash.success(request, f"#{source.number} was merged into this ticket.")
    return redirect(target)


@require_POST
@member_required
def split(request, number: int, message_id: int):
    """Move one message into a new ticket of its own, linked to this one."""
    ticket = get_ticket(request, number, write=True)
    message = get_message(request, ticket, message_id)
    try:
        new = merge.split_message(message, actor=request.user)
    except merge.MergeError as exc:
        flash.error(request, str(exc))
        return redirect(ticket)
    flash.success(request, f"The message is now ticket #{new.number}.")
    return redirect(tenant_reverse(request.tenant, "tickets:detail", new.number))
