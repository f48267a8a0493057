"""Full-text search over subject, bodies, contacts and the ticket number (PostgreSQL FTS; LIKE on SQLite)."""

import pytest
from django.db import connection
from django.urls import reverse

from accounts.models import Membership
from tests.tickets import factories as f
from tickets import lists, merge, search, thread
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="full-text search runs on PostgreSQL"
)


def found(membership, query: str) -> set[int]:
    page = lists.ticket_rows(membership, view="all", filters=lists.Filters(q=query))
    return {t.number for t in page.rows}


@pytest.fixture
def corpus(tenant):
    jane = f.contact(tenant, "jane.doe@northwind.test", "Jane Doe")
    printer = f.ticket(tenant, "Printer on fire", requester=jane, body="The toner smells like burnt caramel.")
    invoice = f.ticket(tenant, "Invoice question", body="Why was I charged twice for March?")
    html_only = f.ticket(
        tenant, "Newsletter", body=None, html="<p>Unsubscribe from the <b>quarterly</b> digest</p>"
    )
    return {"printer": printer, "invoice": invoice, "html": html_only, "jane": jane}


@pytest.fixture
def me(tenant, admin):
    return Membership.objects.get(user=admin)


@needs_postgres
def test_search_vector_is_kept_in_a_gin_index(corpus):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'ticket_search_gin'")
        assert "USING gin (search_vector)" in cursor.fetchone()[0]
    assert Ticket.objects.filter(search_vector__isnull=True).count() == 0


@needs_postgres
def test_finds_by_a_word_of_the_body(corpus, me):
    assert found(me, "caramel") == {corpus["printer"].number}
    assert found(me, "quarterly") == {corpus["html"].number}  # html-only mail is indexed by its text


@needs_postgres
def test_finds_by_subject_words_as_prefixes(corpus, me):
    assert found(me, "printer") == {corpus["printer"].number}
    assert found(me, "invo quest") == {corpus["invoice"].number}
    assert found(me, "INVOICE") == {corpus["invoice"].number}


@needs_postgres
def test_every_word_must_match(corpus, me):
    assert found(me, "printer twice") == set()


@needs_postgres
def test_finds_by_contact_email_name_and_domain(corpus, me):
    number = corpus["printer"].number
    assert found(me, "jane.doe@northwind.test") == {number}
    assert found(me, "northwind") == {number}
    assert found(me, "Jane") == {number}


@needs_postgres
def test_finds_by_number_in_every_spelling(corpus, me, tenant):
    number = corpus["invoice"].number
    for query in (str(number), f"#{number}", f"ACME-{number}", f"acme-{number}"):
        assert number in found(me, query), query


@needs_postgres
def test_punctuation_and_operators_in_a_query_are_harmless(corpus, me):
    for query in ("'", "a & b | !c", "foo:* <-> bar", "\\", "((", "''; DROP TABLE x; --", "@", "..."):
        found(me, query)  # no database error


@needs_postgres
def test_search_respects_what_the_agent_may_see(tenant, agent):
    f.ticket(tenant, "Secret merger", queue=f.queue(tenant, "VIP", restricted=True))
    assert found(Membership.objects.get(user=agent), "merger") == set()


@needs_postgres
def test_notes_and_merges_update_the_index(tenant, admin, me):
    a = f.ticket(tenant, "Alpha", body="first")
    b = f.ticket(tenant, "Beta", body="zanzibar")
    thread.add_note(a, author=admin, body="customer mentioned kilimanjaro")
    assert found(me, "kilimanjaro") == {a.number}
    merge.merge_tickets(b, a, actor=admin)
    assert a.number in found(me, "zanzibar")


@needs_postgres
def test_search_combines_with_filters(client, tenant, admin, corpus):
    client.force_login(admin)
    url = reverse("tickets:list", args=["acme", "all"])
    assert f"#{corpus['printer'].number}<" in client.get(url, {"q": "printer"}).content.decode()
    page = client.get(url, {"q": "printer", "status": "solved"}).content.decode()
    assert f"#{corpus['printer'].number}<" not in page
    assert "No tickets match these filters" in page


def test_like_fallback_finds_the_same_tickets(corpus, me, monkeypatch):
    """SQLite has no FTS: the fallback matches every word by LIKE over the same fields."""
    monkeypatch.setattr(search, "uses_postgres", lambda: False)
    assert found(me, "caramel") == {corpus["printer"].number}
    assert found(me, "northwind jane") == {corpus["printer"].number}
    assert found(me, "quarterly") == {corpus["html"].number}
    assert found(me, f"#{corpus['invoice'].number}") == {corpus["invoice"].number}
    assert found(me, "printer twice") == set()


def test_reindex_is_a_no_op_without_postgres(corpus, monkeypatch):
    monkeypatch.setattr(search, "uses_postgres", lambda: False)
    Ticket.objects.update(search_vector=None)
    search.reindex(corpus["printer"])
    assert Ticket.objects.get(pk=corpus["printer"].pk).search_vector is None


@needs_postgres
def test_reindex_command_fills_missing_vectors(corpus, me):
    from django.core.management import call_command

    Ticket.objects.update(search_vector=None)
    assert found(me, "caramel") == set()
    call_command("reindex_tickets", "--missing", "--tenant", "acme")
    assert found(me, "caramel") == {corpus["printer"].number}
