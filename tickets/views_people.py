"""Agent views of contacts and customers: searchable lists, their pages, domains and merging duplicates."""

from django.contrib import messages as flash
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import member_required, tenant_reverse
from tickets import customers, lists, sla
from tickets.access import can_edit, get_contact, get_customer, require_editor
from tickets.forms import ContactForm, ContactMergeForm, CustomerForm, DomainForm, NewCustomerForm
from tickets.models import Contact

CONTACT_KEYS: lists.Keys = [("email", False), ("id", False)]
CUSTOMER_KEYS: lists.Keys = [("name", False), ("id", False)]


def _people_context(request, **context) -> dict:
    return {"nav": lists.sidebar(request.membership), "can_edit": can_edit(request.membership), **context}


@require_GET
@member_required
def contact_list(request):
    query = request.GET.get("q", "").strip()[:200]
    page = lists.keyset_page(
        customers.contacts(request.membership, query), CONTACT_KEYS, request.GET.get("after")
    )
    return render(
        request, "tickets/contacts.html", _people_context(request, page=page, q=query, nav_page="contacts")
    )


@require_GET
@member_required
def contact_detail(request, contact_id: int):
    contact = get_contact(request, contact_id)
    return render(request, "tickets/contact.html", _contact_context(request, contact))


def _contact_context(request, contact: Contact, form=None, merge_form=None) -> dict:
    tickets = list(customers.contact_tickets(request.membership, contact)[:50])
    return _people_context(
        request,
        contact=contact,
        tickets=tickets,
        show_sla=sla.attach_next_due(tickets, request.tenant),
        mail=customers.email_history(request.membership, contact),
        form=form or ContactForm(instance=contact, tenant=request.tenant),
        merge_form=merge_form or ContactMergeForm(),
        nav_page="contacts",
    )


@require_POST
@member_required
def contact_edit(request, contact_id: int):
    contact = get_contact(request, contact_id, write=True)
    form = ContactForm(request.POST, instance=contact, tenant=request.tenant)
    if not form.is_valid():
        return render(
            request, "tickets/contact.html", _contact_context(request, contact, form=form), status=400
        )
    form.save()
    flash.success(request, "Contact saved.")
    return redirect("tickets:contact", tenant_slug=request.tenant.slug, contact_id=contact.pk)


@require_POST
@member_required
def contact_merge(request, contact_id: int):
    """Fold the duplicate named by address into this contact."""
    target = get_contact(request, contact_id, write=True)
    form = ContactMergeForm(request.POST)
    if form.is_valid():
        source = (
            Contact.objects.for_tenant(request.tenant)
            .filter(email__iexact=form.cleaned_data["duplicate"])
            .first()
        )
        if source is None:
            form.add_error("duplicate", "No contact has this address.")
        else:
            try:
                customers.merge_contacts(source, target, actor=request.user)
            except customers.CustomerError as exc:
                form.add_error("duplicate", str(exc))
            else:
                flash.success(request, f"{source.email} was merged into this contact.")
                return redirect("tickets:contact", tenant_slug=request.tenant.slug, contact_id=target.pk)
    context = _contact_context(request, target, merge_form=form)
    return render(request, "tickets/contact.html", context, status=400)


@require_http_methods(["GET", "POST"])
@member_required
def customer_list(request):
    """Customers, searchable; agents add new ones here with their domains."""
    form = NewCustomerForm()
    if request.method == "POST":
        require_editor(request.membership)
        form = NewCustomerForm(request.POST)
        if form.is_valid():
            try:
                customer = customers.create_customer(
                    request.tenant, name=form.cleaned_data["name"], domains=form.cleaned_data["domains"]
                )
            except customers.CustomerError as exc:
                form.add_error(None, str(exc))
            else:
                flash.success(request, f"{customer.name} was added.")
                return redirect("tickets:customer", tenant_slug=request.tenant.slug, customer_id=customer.pk)
    query = request.GET.get("q", "").strip()[:200]
    page = lists.keyset_page(
        customers.customers(request.membership, query), CUSTOMER_KEYS, request.GET.get("after")
    )
    context = _people_context(request, page=page, q=query, form=form, nav_page="customers")
    return render(request, "tickets/customers.html", context, status=400 if form.errors else 200)


def _customer_context(request, customer, form=None, domain_form=None) -> dict:
    tickets = list(customers.customer_tickets(request.membership, customer)[:50])
    return _people_context(
        request,
        customer=customer,
        domains=list(customer.domains.all()),
        contacts=list(customers.contacts(request.membership).filter(customer=customer)[:100]),
        tickets=tickets,
        show_sla=sla.attach_next_due(tickets, request.tenant),
        form=form or CustomerForm(instance=customer),
        domain_form=domain_form or DomainForm(),
        nav_page="customers",
    )


@require_GET
@member_required
def customer_detail(request, customer_id: int):
    customer = get_customer(request, customer_id)
    return render(request, "tickets/customer.html", _customer_context(request, customer))


@require_POST
@member_required
def customer_edit(request, customer_id: int):
    customer = get_customer(request, customer_id, write=True)
    form = CustomerForm(request.POST, instance=customer)
    if not form.is_valid():
        return render(
            request, "tickets/customer.html", _customer_context(request, customer, form=form), status=400
        )
    form.save()
    flash.success(request, "Customer saved.")
    return redirect("tickets:customer", tenant_slug=request.tenant.slug, customer_id=customer.pk)


@require_POST
@member_required
def customer_domain_add(request, customer_id: int):
    """Claim a domain for the customer: intake links new contacts from it, existing ones are linked now."""
    customer = get_customer(request, customer_id, write=True)
    form = DomainForm(request.POST)
    if form.is_valid():
        try:
            row = customers.add_domain(customer, form.cleaned_data["domain"])
        except customers.CustomerError as exc:
            form.add_error("domain", str(exc))
        else:
            flash.success(request, f"{row.domain} now belongs to {customer.name}.")
            return redirect("tickets:customer", tenant_slug=request.tenant.slug, customer_id=customer.pk)
    context = _customer_context(request, customer, domain_form=form)
    return render(request, "tickets/customer.html", context, status=400)


@require_POST
@member_required
def customer_domain_remove(request, customer_id: int, domain_id: int):
    customer = get_customer(request, customer_id, write=True)
    customers.remove_domain(customer, domain_id)
    return HttpResponseRedirect(tenant_reverse(request.tenant, "tickets:customer", customer.pk))
