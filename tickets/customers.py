"""Contacts and customers as agents see them: search, their tickets and mail, domains, merging duplicates.

(Finding or creating the contact of an inbound sender is intake's job, in tickets/contacts.py; the domains
kept here are the mapping it uses to link a new contact to its customer.)
"""

import re

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from accounts.models import Membership, Tenant
from tickets import history, search
from tickets.models import (
    OPEN_STATUSES,
    Contact,
    Customer,
    CustomerDomain,
    Message,
    MessageKind,
    Participant,
    Ticket,
)

_DOMAIN = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")


class CustomerError(Exception):
    """A change to a customer or contact that cannot be made; the message says why."""


def normalise_domain(domain: str) -> str:
    return domain.strip().lower().lstrip("@").rstrip(".")


def _open_ticket_count(membership: Membership, field: str) -> Subquery:
    visible = Ticket.objects.visible_to(membership).filter(
        status__in=OPEN_STATUSES, **{field: OuterRef("pk")}
    )
    return Subquery(visible.order_by().values(field).annotate(n=Count("pk")).values("n")[:1])


def contacts(membership: Membership, query: str = "") -> QuerySet:
    """The tenant's contacts matching `query` (name, address or customer), with their open ticket count."""
    qs = Contact.objects.for_tenant(membership.tenant).select_related("customer")
    for word in query.split()[:6]:
        qs = qs.filter(Q(email__icontains=word) | Q(name__icontains=word) | Q(customer__name__icontains=word))
    return qs.annotate(open_tickets=_open_ticket_count(membership, "requester"))


def customers(membership: Membership, query: str = "") -> QuerySet:
    """The tenant's customers matching `query` (name or domain), with contact and open ticket counts."""
    qs = Customer.objects.for_tenant(membership.tenant).prefetch_related("domains")
    for word in query.split()[:6]:
        qs = qs.filter(
            Q(name__icontains=word)
            | Q(pk__in=CustomerDomain.objects.filter(domain__icontains=word).values("customer"))
        )
    contact_count = (
        Contact.objects.filter(customer=OuterRef("pk"))
        .order_by()
        .values("customer")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    return qs.annotate(
        contact_count=Subquery(contact_count), open_tickets=_open_ticket_count(membership, "customer")
    )


# A contact page lists the latest tickets; older ones are found by search.
CONTACT_TICKETS_LIMIT = 500


def contact_tickets(membership: Membership, contact: Contact) -> QuerySet:
    """Tickets the member may see where the contact asked or took part, newest activity first."""
    # A UNION of two index lookups as a primary-key filter, in the same query (an OR of both conditions makes
    # PostgreSQL scan every ticket).
    took_part = (
        Participant.objects.filter(contact=contact)
        .order_by("-ticket_id")
        .values_list("ticket_id", flat=True)[:CONTACT_TICKETS_LIMIT]
    )
    asked = (
        Ticket.objects.filter(requester=contact)
        .order_by("-pk")
        .values_list("pk", flat=True)[:CONTACT_TICKETS_LIMIT]
    )
    if connection.features.supports_slicing_ordering_in_compound:
        ids = took_part.union(asked)
    else:  # SQLite allows no LIMIT inside a UNION: both lists are read first
        ids = {*took_part, *asked}
    return (
        Ticket.objects.visible_to(membership)
        .filter(pk__in=ids)
        .select_related("mailbox", "assignee")
        .defer("search_vector")
        .order_by("-last_message_at", "-id")
    )


def email_history(membership: Membership, contact: Contact, limit: int = 20) -> list[Message]:
    """The latest mail with this person: what they sent and what we sent on their tickets (visible ones)."""
    tickets = list(contact_tickets(membership, contact).values_list("pk", flat=True))
    qs = Message.objects.filter(tenant=membership.tenant, ticket__in=tickets).filter(
        Q(contact=contact) | Q(kind=MessageKind.OUTBOUND)
    )
    return list(qs.select_related("ticket", "author").order_by("-created_at", "-id")[:limit])


def customer_tickets(membership: Membership, customer: Customer) -> QuerySet:
    return (
        Ticket.objects.visible_to(membership)
        .filter(customer=customer)
        .select_related("requester", "mailbox", "assignee")
        .defer("search_vector")
        .order_by("-last_message_at", "-id")
    )


@transaction.atomic
def create_customer(tenant: Tenant, *, name: str, domains: list[str] = (), notes: str = "") -> Customer:
    """A new customer with its email domains; CustomerError if the name or a domain is taken."""
    name = " ".join(name.split())
    if Customer.objects.for_tenant(tenant).filter(name__iexact=name).exists():
        raise CustomerError(f"A customer called “{name}” already exists.")
    customer = Customer.objects.create(tenant=tenant, name=name, notes=notes)
    for domain in domains:
        add_domain(customer, domain)
    return customer


@transaction.atomic
def add_domain(customer: Customer, domain: str) -> CustomerDomain:
    """Claim an email domain for the customer and link its contacts that have no customer yet."""
    domain = normalise_domain(domain)
    if not _DOMAIN.match(domain):
        raise CustomerError(f"“{domain}” is not a domain name like example.com.")
    taken = (
        CustomerDomain.objects.filter(tenant_id=customer.tenant_id, domain=domain)
        .select_related("customer")
        .first()
    )
    if taken:
        if taken.customer_id == customer.pk:
            return taken
        raise CustomerError(f"{domain} already belongs to {taken.customer.name}.")
    try:
        with transaction.atomic():
            row = CustomerDomain.objects.create(
                tenant_id=customer.tenant_id, customer=customer, domain=domain
            )
    except IntegrityError:
        raise CustomerError(f"{domain} was just claimed by another customer.") from None
    Contact.objects.filter(
        tenant_id=customer.tenant_id, customer__isnull=True, email__iendswith="@" + domain
    ).update(customer=customer)
    return row


def remove_domain(customer: Customer, domain_id: int) -> None:
    """Stop mapping a domain to the customer (contacts already linked stay linked)."""
    CustomerDomain.objects.filter(tenant_id=customer.tenant_id, customer=customer, pk=domain_id).delete()


@transaction.atomic
def merge_contacts(source: Contact, target: Contact, *, actor) -> Contact:
    """Fold a duplicate contact into `target`: tickets, messages and participations move; source is deleted."""
    if source.tenant_id != target.tenant_id:
        raise CustomerError("Contacts of different workspaces cannot be merged.")
    if source.pk == target.pk:
        raise CustomerError("A contact cannot be merged into itself.")
    tickets = list(Ticket.objects.filter(requester=source))
    Ticket.objects.filter(requester=source).update(requester=target, updated_at=timezone.now())
    Message.objects.filter(contact=source).update(contact=target)
    have = set(Participant.objects.filter(contact=target).values_list("ticket_id", flat=True))
    Participant.objects.filter(contact=source).exclude(ticket_id__in=have).update(contact=target)
    Participant.objects.filter(contact=source).delete()
    for field in ("name", "phone", "notes"):
        if not getattr(target, field) and getattr(source, field):
            setattr(target, field, getattr(source, field))
    if target.customer_id is None and source.customer_id:
        target.customer_id = source.customer_id
    target.save()
    for ticket in tickets:
        history.record(ticket, actor, "requester", str(source)[:255], str(target)[:255])
    source.delete()
    for ticket in Ticket.objects.filter(Q(requester=target) | Q(participant__contact=target)).distinct():
        search.reindex(ticket)
    return target
