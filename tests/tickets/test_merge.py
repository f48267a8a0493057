"""Merging tickets, splitting a message off, merging duplicate contacts, and customer domains."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from mailboxes.models import OutboundEmail
from tests.tickets import factories as f
from tickets import customers, merge, threading
from tickets.models import (
    Contact,
    CustomerDomain,
    Message,
    MessageKind,
    Participant,
    Status,
    Ticket,
    TicketEvent,
)

pytestmark = pytest.mark.django_db


def test_merge_moves_messages_people_and_tags_and_closes_the_source_with_a_link(tenant, admin):
    vip = f.tag(tenant, "vip")
    target = f.ticket(tenant, "Original", at=timezone.now() - timedelta(hours=3))
    source = f.ticket(tenant, "Duplicate", tags=[vip])
    f.message(source, kind=MessageKind.NOTE, text="note on the dup", author=admin)
    OutboundEmail.objects.create(
        tenant=tenant, kind="reply", ticket=source, from_addr="a@b", to=["c@d"], message_id="<x@y>"
    )
    merge.merge_tickets(source, target, actor=admin)
    source.refresh_from_db()
    target.refresh_from_db()
    assert source.merged_into == target and source.status == Status.CLOSED
    assert source.close_reason == f"Merged into #{target.number}"
    assert Message.objects.filter(ticket=source).count() == 0
    assert Message.objects.filter(ticket=target).count() == 3
    assert set(Participant.objects.filter(ticket=target).values_list("contact", flat=True)) == {
        target.requester_id,
        source.requester_id,
    }
    assert list(target.tags.all()) == [vip]
    assert OutboundEmail.objects.get(message_id="<x@y>").ticket == target
    assert target.last_message_at > timezone.now() - timedelta(minutes=1)  # the newest message moved in
    assert TicketEvent.objects.filter(ticket=source, field="merged_into").exists()
    assert TicketEvent.objects.filter(ticket=target, field="merged_from").exists()


def test_replies_to_a_merged_tickets_messages_thread_into_the_survivor(tenant, admin):
    target = f.ticket(tenant, "Original")
    source = f.ticket(tenant, "Duplicate")
    Message.objects.filter(ticket=source).update(message_id="<dup-1@customer.test>")
    merge.merge_tickets(source, target, actor=admin)
    hit = threading.header_match(tenant, "<dup-1@customer.test>", [])
    assert hit is not None and hit[0].pk == target.pk


@pytest.mark.parametrize("case", ["itself", "merged-target", "merged-source", "other-tenant"])
def test_impossible_merges_are_refused_with_a_reason(tenant, other_tenant, admin, case):
    a, b = f.ticket(tenant, "A"), f.ticket(tenant, "B")
    if case == "itself":
        b = a
    elif case == "merged-target":
        merge.merge_tickets(b, f.ticket(tenant, "C"), actor=admin)
        b.refresh_from_db()
    elif case == "merged-source":
        merge.merge_tickets(a, f.ticket(tenant, "C"), actor=admin)
        a.refresh_from_db()
    else:
        b = f.ticket(other_tenant, "Theirs")
    with pytest.raises(merge.MergeError):
        merge.merge_tickets(a, b, actor=admin)


def test_merge_view_follows_merges_and_opens_the_survivor(client, tenant, admin):
    survivor = f.ticket(tenant, "Survivor")
    middle = f.ticket(tenant, "Middle")
    merge.merge_tickets(middle, survivor, actor=admin)
    late = f.ticket(tenant, "Late duplicate")
    client.force_login(admin)
    response = client.post(
        reverse("tickets:merge", args=["acme", late.number]), {"target": f"#{middle.number}"}
    )
    late.refresh_from_db()
    assert late.merged_into == survivor
    page = client.get(reverse("tickets:detail", args=["acme", late.number])).content.decode()
    assert "This ticket was merged into" in page and f"#{survivor.number}" in page
    assert response.status_code == 302


def test_merge_view_with_a_bad_number_says_so(client, tenant, admin):
    t = f.ticket(tenant)
    client.force_login(admin)
    response = client.post(
        reverse("tickets:merge", args=["acme", t.number]), {"target": "banana"}, follow=True
    )
    assert "Enter a ticket number, like 1042." in response.content.decode()
    response = client.post(
        reverse("tickets:merge", args=["acme", t.number]), {"target": "99999"}, follow=True
    )
    assert "There is no ticket #99999 that you can see." in response.content.decode()


def test_split_moves_one_message_into_a_new_linked_ticket(client, tenant, admin):
    t = f.ticket(tenant, "Two questions")
    other = f.message(
        t, text="Also, can I change my plan?", subject="Plan change", at=timezone.now() + timedelta(seconds=1)
    )
    client.force_login(admin)
    response = client.post(reverse("tickets:split", args=["acme", t.number, other.pk]))
    new = Ticket.objects.exclude(pk=t.pk).get()
    assert response["Location"] == f"/acme/tickets/{new.number}/"
    assert new.title == "Plan change" and new.related_to == t and new.requester == t.requester
    assert list(new.messages.all()) == [other]
    assert t.messages.count() == 1
    assert TicketEvent.objects.filter(ticket=t, field="split_to").exists()
    page = client.get(response["Location"]).content.decode()
    assert "Possibly related to" in page


def test_the_only_message_cannot_be_split_off(tenant, admin):
    t = f.ticket(tenant)
    with pytest.raises(merge.MergeError):
        merge.split_message(t.messages.get(), actor=admin)


# --- contacts and customers ----------------------------------------------------------------------------------


def test_merging_contacts_moves_tickets_messages_and_participation(client, tenant, agent):
    keep = f.contact(tenant, "jane@northwind.test", "Jane Doe")
    dup = f.contact(tenant, "jane.doe@gmail.test", "", None)
    dup.phone = "+1 555 0100"
    dup.save()
    t1 = f.ticket(tenant, "From the dup", requester=dup)
    t2 = f.ticket(tenant, "Both", requester=keep)
    Participant.objects.create(tenant=tenant, ticket=t2, contact=dup)
    client.force_login(agent)
    response = client.post(
        reverse("tickets:contact_merge", args=["acme", keep.pk]), {"duplicate": "JANE.DOE@gmail.test"}
    )
    assert response.status_code == 302
    assert not Contact.objects.filter(pk=dup.pk).exists()
    t1.refresh_from_db()
    keep.refresh_from_db()
    assert t1.requester == keep
    assert Message.objects.filter(ticket=t1).get().contact == keep
    assert Participant.objects.filter(ticket=t2, contact=keep).count() == 1
    assert keep.phone == "+1 555 0100" and keep.name == "Jane Doe"
    assert TicketEvent.objects.filter(ticket=t1, field="requester").exists()


def test_merging_a_contact_into_itself_is_refused(client, tenant, agent):
    jane = f.contact(tenant, "jane@northwind.test")
    client.force_login(agent)
    response = client.post(
        reverse("tickets:contact_merge", args=["acme", jane.pk]), {"duplicate": "jane@northwind.test"}
    )
    assert response.status_code == 400
    assert "cannot be merged into itself" in response.content.decode()


def test_adding_a_domain_links_contacts_without_a_customer(client, tenant, agent):
    northwind = f.customer(tenant, "Northwind")
    loose = f.contact(tenant, "bob@Northwind.test")
    elsewhere = f.contact(tenant, "eve@other.test")
    client.force_login(agent)
    client.post(
        reverse("tickets:customer_domain_add", args=["acme", northwind.pk]), {"domain": " @NorthWind.test "}
    )
    assert CustomerDomain.objects.get(customer=northwind).domain == "northwind.test"
    loose.refresh_from_db()
    elsewhere.refresh_from_db()
    assert loose.customer == northwind and elsewhere.customer is None


@pytest.mark.parametrize(
    ("domain", "error"),
    [
        ("not a domain", "is not a domain name"),
        ("localhost", "is not a domain name"),
        ("taken.test", "already belongs to"),
    ],
)
def test_domain_errors_are_shown_next_to_the_field(client, tenant, agent, domain, error):
    f.customer(tenant, "Other").domains.create(tenant=tenant, domain="taken.test")
    mine = f.customer(tenant, "Mine")
    client.force_login(agent)
    response = client.post(reverse("tickets:customer_domain_add", args=["acme", mine.pk]), {"domain": domain})
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not mine.domains.exists()


def test_removing_a_domain_keeps_linked_contacts(client, tenant, agent):
    northwind = f.customer(tenant, "Northwind")
    row = customers.add_domain(northwind, "northwind.test")
    bob = f.contact(tenant, "bob@northwind.test", customer=northwind)
    client.force_login(agent)
    client.post(reverse("tickets:customer_domain_remove", args=["acme", northwind.pk, row.pk]))
    assert not northwind.domains.exists()
    bob.refresh_from_db()
    assert bob.customer == northwind


def test_new_customer_with_domains(client, tenant, agent):
    client.force_login(agent)
    response = client.post(
        reverse("tickets:customers", args=["acme"]),
        {"name": "Contoso", "domains": "contoso.test, contoso.co.test"},
    )
    assert response.status_code == 302
    contoso = tenant.customers.get(name="Contoso")
    assert sorted(d.domain for d in contoso.domains.all()) == ["contoso.co.test", "contoso.test"]
    again = client.post(reverse("tickets:customers", args=["acme"]), {"name": "contoso"})
    assert again.status_code == 400 and "already exists" in again.content.decode()


def test_outsider_cannot_merge_split_or_touch_contacts_and_customers(client, tenant, outsider):
    a, b = f.ticket(tenant, "A"), f.ticket(tenant, "B")
    northwind = f.customer(tenant, "Northwind")
    client.force_login(outsider)
    for slug in ("acme", "globex"):

        def rev(name, *args, slug=slug):
            return reverse(f"tickets:{name}", args=[slug, *args])

        assert client.post(rev("merge", a.number), {"target": str(b.number)}).status_code == 404
        assert client.post(rev("split", a.number, a.messages.get().pk)).status_code == 404
        assert (
            client.post(rev("contact_merge", a.requester_id), {"duplicate": b.requester.email}).status_code
            == 404
        )
        assert client.post(rev("customer_domain_add", northwind.pk), {"domain": "x.test"}).status_code == 404
        assert client.get(rev("customer", northwind.pk)).status_code == 404
    a.refresh_from_db()
    assert a.merged_into is None and not northwind.domains.exists()
