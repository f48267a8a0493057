"""Who wrote: a sender's address becomes a contact of the tenant, linked to a customer by its domain."""

from __future__ import annotations

from django.db import IntegrityError, connection, transaction

from accounts.models import Tenant
from tickets.models import Contact, Customer, CustomerDomain


def normalize_address(address: str) -> str:
    """The address as we key contacts: trimmed and lower-cased (local parts are case-insensitive in practice)."""
    return (address or "").strip().strip("<>").lower()


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower() if "@" in address else ""


def customer_for_domain(tenant: Tenant, domain: str, cache: dict | None = None) -> Customer | None:
    """The customer that claims this email domain, if any (`cache`: a dict kept for one batch of mail)."""
    if not domain:
        return None
    if cache is not None and (tenant.pk, domain) in cache:
        return cache[(tenant.pk, domain)]
    row = CustomerDomain.objects.filter(tenant=tenant, domain=domain).select_related("customer").first()
    customer = row.customer if row else None
    if cache is not None:
        cache[(tenant.pk, domain)] = customer
    return customer


def contact_for(
    tenant: Tenant, address: str, name: str = "", *, cache: dict | None = None, known: dict | None = None
) -> Contact | None:
    """The tenant's contact for this address: the existing one, else a new one named from the display name.

    A contact without a customer is linked to the customer that claims its domain. Safe under concurrency
    (a unique constraint decides, the loser reads the winner's row). Call inside the processing transaction.
    `known`: a batch's contacts read beforehand ((tenant id, email) -> Contact, or None for "not there"; see
    `tickets.lookups`), kept up to date here.
    """
    email = normalize_address(address)
    if not email or "@" not in email or len(email) > 320:
        return None
    name = (name or "").strip()[:200]
    key = (tenant.pk, email)
    if known is not None and key in known:
        contact = known[key]
    else:
        contact = Contact.objects.filter(tenant=tenant, email=email).first()
    if contact is None:
        contact = _create(tenant, email, name, cache)
        if known is not None:
            known[key] = contact
        return contact
    _complete(tenant, contact, name, cache)
    if known is not None:
        known[key] = contact
    return contact


def create_many(tenant: Tenant, names: dict[str, str], *, cache: dict | None = None) -> list[Contact]:
    """New contacts for these normalised addresses ({email: display name}) in one statement, each linked to
    the customer of its domain; a row another worker created meanwhile wins (its id is returned)."""
    if not connection.features.supports_update_conflicts_with_target:
        return [
            c for c in (contact_for(tenant, e, n, cache=cache) for e, n in names.items()) if c is not None
        ]
    rows = [
        Contact(
            tenant=tenant,
            email=email,
            name=(name or "").strip()[:200],
            customer=customer_for_domain(tenant, domain_of(email), cache),
        )
        for email, name in names.items()
        if email and "@" in email and len(email) <= 320
    ]
    Contact.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["tenant", "email"], update_fields=["email"]
    )
    return rows


def _create(tenant: Tenant, email: str, name: str, cache: dict | None) -> Contact:
    customer = customer_for_domain(tenant, domain_of(email), cache)
    new = Contact(tenant=tenant, email=email, name=name, customer=customer)
    if connection.features.supports_update_conflicts_with_target:
        # INSERT ... ON CONFLICT DO UPDATE ... RETURNING id: one statement, no savepoint; if another
        # worker created the contact a moment ago, its row (and id) wins and is left as it is.
        Contact.objects.bulk_create(
            [new], update_conflicts=True, unique_fields=["tenant", "email"], update_fields=["email"]
        )
        return new
    try:
        with transaction.atomic():
            new.save(force_insert=True)
            return new
    except IntegrityError:
        contact = Contact.objects.get(tenant=tenant, email=email)
    _complete(tenant, contact, name, cache)
    return contact


def _complete(tenant: Tenant, contact: Contact, name: str, cache: dict | None) -> None:
    """Fill in what an existing contact lacks: a name from the display name, the customer of its domain."""
    changed = []
    if not contact.name and name and name.lower() != contact.email:
        contact.name = name
        changed.append("name")
    if contact.customer_id is None:
        customer = customer_for_domain(tenant, contact.domain, cache)
        if customer is not None:
            contact.customer = customer
            changed.append("customer")
    if changed:
        contact.save(update_fields=changed)


def link_domain_contacts(customer: Customer) -> int:
    """After a customer claims domains: attach their contacts that have no customer yet; returns how many."""
    domains = list(customer.domains.values_list("domain", flat=True))
    updated = 0
    for domain in domains:
        updated += Contact.objects.filter(
            tenant=customer.tenant, customer__isnull=True, email__iendswith=f"@{domain}"
        ).update(customer=customer)
    return updated
