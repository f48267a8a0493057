"""One access function per top-level object of the ticket area: filtered in the query, 404 for outsiders.

A member who may see an object but not change it gets 403 (light agents read tickets and write notes).
Queues and mailboxes decide what an agent sees: `Ticket.objects.visible_to(membership)` is the only gate,
and attachments, inline images and message bodies are reached through their ticket, never by id alone.
"""

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest

from accounts.models import Membership
from mailboxes.models import Mailbox
from tickets.models import Attachment, Contact, Customer, Message, Queue, Ticket


def can_edit(membership: Membership) -> bool:
    """Agents and admins change tickets, contacts and customers; light agents read and write notes."""
    return membership.can_write_to_customers


def require_editor(membership: Membership) -> None:
    if not can_edit(membership):
        raise PermissionDenied("Light agents can read tickets and write internal notes only.")


def visible_tickets(request: HttpRequest):
    """The tickets of the current tenant in queues and mailboxes the member may see."""
    return Ticket.objects.visible_to(request.membership)


def get_ticket(request: HttpRequest, number: int, *, write: bool = False) -> Ticket:
    """The ticket if it belongs to the current tenant and the member may see it; 404 otherwise.

    `write=True` also requires the right to change it (403 for light agents).
    """
    ticket = (
        visible_tickets(request)
        .select_related("requester__customer", "customer")
        # Search vectors are large (tens of KB for a long thread) and no page shows them.
        .defer("search_vector")
        .filter(number=number)
        .order_by()  # a unique key: no activity ordering to compile
        .first()
    )
    if ticket is None:
        raise Http404("No such ticket.")
    ticket.tenant = request.tenant  # the same row; saves a query wherever ticket.tenant is read
    # Queue, mailbox and assignee from the request's lists (the page needs those anyway): joining them made
    # a nine-table query that PostgreSQL took longer to plan than to run. A merged or related ticket is
    # loaded only when the ticket has one.
    attach_known([ticket], request.membership)
    if write:
        require_editor(request.membership)
    return ticket


def get_message(request: HttpRequest, ticket: Ticket, message_id: int) -> Message:
    """A message of a ticket the member may see (fetch the ticket with get_ticket first)."""
    message = Message.objects.filter(tenant=request.tenant, ticket=ticket, pk=message_id).first()
    if message is None:
        raise Http404("No such message.")
    message.ticket = ticket
    return message


def get_attachment(request: HttpRequest, attachment_id: int) -> Attachment:
    """An attachment of a message whose ticket the member may see; 404 otherwise."""
    attachment = (
        Attachment.objects.filter(
            tenant=request.tenant,
            pk=attachment_id,
            message__ticket__in=visible_tickets(request).values("pk"),
        )
        .select_related("message")
        .first()
    )
    if attachment is None:
        raise Http404("No such attachment.")
    return attachment


def get_contact(request: HttpRequest, contact_id: int, *, write: bool = False) -> Contact:
    """A contact of the current tenant; 404 otherwise, 403 on write for light agents."""
    contact = (
        Contact.objects.for_tenant(request.tenant).select_related("customer").filter(pk=contact_id).first()
    )
    if contact is None:
        raise Http404("No such contact.")
    if write:
        require_editor(request.membership)
    return contact


def get_customer(request: HttpRequest, customer_id: int, *, write: bool = False) -> Customer:
    """A customer of the current tenant; 404 otherwise, 403 on write for light agents."""
    customer = Customer.objects.for_tenant(request.tenant).filter(pk=customer_id).first()
    if customer is None:
        raise Http404("No such customer.")
    if write:
        require_editor(request.membership)
    return customer


def visible_queues(membership: Membership):
    """Queues whose tickets the member sees: unrestricted ones and those they belong to (admins: all)."""
    qs = Queue.objects.for_tenant(membership.tenant)
    if membership.is_admin:
        return qs
    member_of = Queue.members.through.objects.filter(membership=membership).values("queue_id")
    return qs.filter(Q(restricted=False) | Q(pk__in=member_of))


def visible_queue_list(membership: Membership) -> list[Queue]:
    """visible_queues() as a list, loaded once per request (the sidebar, filters and forms all need it)."""
    if not hasattr(membership, "_visible_queue_list"):
        membership._visible_queue_list = list(visible_queues(membership).order_by("name"))
    return membership._visible_queue_list


def loaded_visibility(membership: Membership) -> tuple[list[int], list[int]] | None:
    """The ids of the queues and mailboxes the member sees, if this request has loaded both lists already."""
    if hasattr(membership, "_visible_queue_list") and hasattr(membership, "_visible_mailbox_list"):
        return (
            [q.pk for q in membership._visible_queue_list],
            [m.pk for m in membership._visible_mailbox_list],
        )
    return None


def get_queue(request: HttpRequest, queue_id: int) -> Queue:
    """A queue the member may see; 404 otherwise."""
    queue = visible_queues(request.membership).filter(pk=queue_id).first()
    if queue is None:
        raise Http404("No such queue.")
    return queue


def visible_mailboxes(membership: Membership):
    return Mailbox.objects.visible_to(membership)


def visible_mailbox_list(membership: Membership) -> list[Mailbox]:
    """visible_mailboxes() by name, loaded once per request (filters and list rows both need them)."""
    if not hasattr(membership, "_visible_mailbox_list"):
        membership._visible_mailbox_list = list(visible_mailboxes(membership).order_by("name"))
    return membership._visible_mailbox_list


def member_list(membership: Membership) -> list[Membership]:
    """Every membership of the member's tenant with its user, by name, loaded once per request."""
    if not hasattr(membership, "_member_list"):
        membership._member_list = list(
            Membership.objects.for_tenant(membership.tenant)
            .select_related("user")
            .order_by("user__name", "user__email")
        )
    return membership._member_list


def attach_known(tickets: list[Ticket], membership: Membership) -> None:
    """Set each ticket's queue, mailbox and assignee from the request's lists of them instead of joining their
    wide rows to every ticket (the few not found, e.g. a former member, in one query)."""
    known = {
        "queue": {q.pk: q for q in visible_queue_list(membership)},
        "mailbox": {m.pk: m for m in visible_mailbox_list(membership)},
        "assignee": {m.user_id: m.user for m in member_list(membership)},
    }
    for name, objects in known.items():
        f = Ticket._meta.get_field(name)
        missing = {getattr(ticket, f.attname) for ticket in tickets} - objects.keys() - {None}
        if missing:
            objects = {**objects, **f.related_model._base_manager.in_bulk(missing)}
        for ticket in tickets:
            pk = getattr(ticket, f.attname)
            f.set_cached_value(ticket, objects.get(pk) if pk is not None else None)
