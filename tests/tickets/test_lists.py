"""Ticket lists: views, filters that combine, keyset pagination, counters, unread markers, live updates, bulk."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from tests.tickets import factories as f
from tickets import lists
from tickets.models import MessageKind, Priority, Status, Ticket, TicketEvent

pytestmark = pytest.mark.django_db

# The most queries any list page may make, whatever the number of rows.
MAX_QUERIES = 18


def list_urls(tenant, queue, customer) -> dict[str, str]:
    rev = lambda name, *args: reverse(f"tickets:{name}", args=[tenant.slug, *args])  # noqa: E731
    return {
        "inbox": rev("inbox"),
        **{f"view-{key}": rev("list", key) for key in lists.VIEWS},
        "queue": rev("queue", queue.pk),
        "filtered": rev("list", "all")
        + f"?status=new&status=open&priority=2&tag=1&unread=1&customer={customer.pk}",
        "search": rev("list", "all") + "?q=printer",
        "sorted": rev("list", "open") + "?sort=priority",
        "poll": rev("changes") + "?view=open&since=2000-01-01T00:00:00%2B00:00",
        "contacts": rev("contacts"),
        "contacts-search": rev("contacts") + "?q=example",
        "customers": rev("customers"),
        "customer": rev("customer", customer.pk),
    }


def _seed(tenant, n, *, queue, customer, agents, tag):
    box = f.mailbox(tenant, f"M{Ticket.objects.count() % 97}")
    for i in range(n):
        person = f.contact(tenant, customer=customer if i % 2 else None)
        f.ticket(
            tenant,
            f"Printer question {i}",
            requester=person,
            queue=queue,
            mailbox=box,
            assignee=agents[i % len(agents)],
            tags=[tag] if i % 3 == 0 else [],
        )


@pytest.mark.parametrize("who", ["admin", "agent"])
def test_list_pages_make_the_same_few_queries_for_10_and_60_tickets(
    client, tenant, admin, agent, who, django_assert_max_num_queries
):
    """Query counts must not grow with rows: the same bound at 10 and 60 tickets, for admins and agents."""
    queue = f.queue(tenant, "Support")
    customer = f.customer(tenant, "Northwind")
    tag = f.tag(tenant, "vip")
    user = {"admin": admin, "agent": agent}[who]
    client.force_login(user)
    _seed(tenant, 10, queue=queue, customer=customer, agents=[admin, agent], tag=tag)
    pages = list_urls(tenant, queue, customer)
    client.get(pages["inbox"])  # the first request of a session saves the session: not a list query
    counts = {}
    for name, url in pages.items():
        with CaptureQueriesContext(connection) as ctx, django_assert_max_num_queries(MAX_QUERIES):
            assert client.get(url).status_code == 200, name
        counts[name] = len(ctx)
    _seed(tenant, 50, queue=queue, customer=customer, agents=[admin, agent], tag=tag)
    client.get(pages["inbox"])  # the sidebar counters are recomputed once after tickets change, then cached
    for name, url in pages.items():
        with CaptureQueriesContext(connection) as ctx, django_assert_max_num_queries(MAX_QUERIES):
            response = client.get(url)
        assert response.status_code == 200, name
        assert len(ctx) == counts[name], f"{name}: {counts[name]} queries with 10 tickets, {len(ctx)} with 60"
    page = client.get(pages["view-all"]).content.decode()
    assert page.count("data-row ") == 50  # one full page


def test_ticket_page_queries_do_not_grow_with_messages(client, tenant, admin, django_assert_max_num_queries):
    t = f.ticket(tenant, html="<p>Hi</p>", mailbox=f.mailbox(tenant))
    f.message(t, text="first", kind=MessageKind.INBOUND, raw=b"Subject: first\r\n\r\nbody")
    client.force_login(admin)
    url = reverse("tickets:detail", args=["acme", t.number])
    client.get(url)  # warm: session saved, ticket read once
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for i in range(20):
        inbound = i % 2 == 1  # inbound ones have a stored original and a processing trace
        m = f.message(
            t,
            text=f"reply {i}",
            kind=MessageKind.INBOUND if inbound else MessageKind.NOTE,
            author=admin,
            raw=f"Subject: {i}\r\n\r\nbody".encode() if inbound else None,
        )
        f.attachment(m, f"file{i}.txt", f"content {i}".encode(), "text/plain")
    with CaptureQueriesContext(connection) as many, django_assert_max_num_queries(30):
        assert client.get(url).status_code == 200
    assert len(many) == len(few)


# --- views ---------------------------------------------------------------------------------------------------


def _numbers(page) -> list[int]:
    return [t.number for t in page.rows]


def test_views_pick_the_right_tickets(tenant, admin, agent):
    me = Membership.objects.get(user=agent)
    mine = f.ticket(tenant, "Mine", assignee=agent, status=Status.OPEN)
    unassigned = f.ticket(tenant, "Nobody's", status=Status.NEW)
    pending = f.ticket(tenant, "Waiting", status=Status.PENDING, assignee=admin)
    solved = f.ticket(tenant, "Done", status=Status.SOLVED)
    closed = f.ticket(tenant, "Closed", status=Status.CLOSED)
    rows = lambda view: set(_numbers(lists.ticket_rows(me, view=view)))  # noqa: E731
    assert rows("mine") == {mine.number}
    assert rows("unassigned") == {unassigned.number}
    assert rows("open") == {mine.number, unassigned.number, pending.number}
    assert rows("pending") == {pending.number}
    assert rows("solved") == {solved.number, closed.number}
    assert rows("all") == {t.number for t in (mine, unassigned, pending, solved, closed)}


def test_queue_view_shows_open_tickets_of_that_queue(client, tenant, agent):
    billing, support = f.queue(tenant, "Billing"), f.queue(tenant, "Support")
    a = f.ticket(tenant, "Billing open", queue=billing, status=Status.OPEN)
    f.ticket(tenant, "Billing solved", queue=billing, status=Status.SOLVED)
    f.ticket(tenant, "Support open", queue=support)
    client.force_login(agent)
    page = client.get(reverse("tickets:queue", args=["acme", billing.pk])).content.decode()
    assert "Billing open" in page and "Billing solved" not in page and "Support open" not in page
    assert f"#{a.number}" in page


def test_restricted_queue_is_404_for_agents_outside_it(client, tenant, agent):
    vip = f.queue(tenant, "VIP", restricted=True)
    client.force_login(agent)
    assert client.get(reverse("tickets:queue", args=["acme", vip.pk])).status_code == 404


# --- filters -------------------------------------------------------------------------------------------------


def test_filters_combine_and_stay_in_the_url(client, tenant, admin, agent):
    billing = f.queue(tenant, "Billing")
    box = f.mailbox(tenant, "BIL")
    vip = f.tag(tenant, "vip")
    acme_corp = f.customer(tenant, "Acme Corp")
    buyer = f.contact(tenant, "buyer@corp.test", "Bea Buyer", acme_corp)
    old = timezone.now() - timedelta(days=30)
    match = f.ticket(
        tenant,
        "The one",
        requester=buyer,
        queue=billing,
        mailbox=box,
        assignee=agent,
        status=Status.OPEN,
        priority=Priority.HIGH,
        tags=[vip],
    )
    # Each of these differs from `match` in exactly one filter.
    near_misses = [
        f.ticket(
            tenant,
            "Wrong status",
            requester=buyer,
            queue=billing,
            mailbox=box,
            assignee=agent,
            status=Status.PENDING,
            priority=Priority.HIGH,
            tags=[vip],
        ),
        f.ticket(
            tenant,
            "Wrong priority",
            requester=buyer,
            queue=billing,
            mailbox=box,
            assignee=agent,
            status=Status.OPEN,
            tags=[vip],
        ),
        f.ticket(
            tenant,
            "Wrong queue",
            requester=buyer,
            mailbox=box,
            assignee=agent,
            status=Status.OPEN,
            priority=Priority.HIGH,
            tags=[vip],
        ),
        f.ticket(
            tenant,
            "Wrong mailbox",
            requester=buyer,
            queue=billing,
            assignee=agent,
            status=Status.OPEN,
            priority=Priority.HIGH,
            tags=[vip],
        ),
        f.ticket(
            tenant,
            "Wrong assignee",
            requester=buyer,
            queue=billing,
            mailbox=box,
            assignee=admin,
            status=Status.OPEN,
            priority=Priority.HIGH,
            tags=[vip],
        ),
        f.ticket(
            tenant,
            "No tag",
            requester=buyer,
            queue=billing,
            mailbox=box,
            assignee=agent,
            status=Status.OPEN,
            priority=Priority.HIGH,
        ),
        f.ticket(
            tenant,
            "Old one",
            requester=buyer,
            queue=billing,
            mailbox=box,
            assignee=agent,
            status=Status.OPEN,
            priority=Priority.HIGH,
            tags=[vip],
            at=old,
        ),
        f.ticket(
            tenant,
            "Other customer",
            queue=billing,
            mailbox=box,
            assignee=agent,
            status=Status.OPEN,
            priority=Priority.HIGH,
            tags=[vip],
        ),
    ]
    day = timezone.localdate()
    query = (
        f"?status=open&priority=3&queue={billing.pk}&mailbox={box.pk}&assignee={agent.pk}&tag={vip.pk}"
        f"&customer={acme_corp.pk}&created_from={day - timedelta(days=1)}&created_to={day}"
        f"&updated_from={day - timedelta(days=1)}&updated_to={day}&unread=1"
    )
    client.force_login(admin)
    page = client.get(reverse("tickets:list", args=["acme", "all"]) + query).content.decode()
    assert f"#{match.number}<" in page
    for miss in near_misses:
        assert f"#{miss.number}<" not in page, miss.title
    # Every active filter shows as a chip that links to the same URL without it.
    assert page.count('class="filter-chip"') == 12
    assert "Customer: Acme Corp" in page
    # The next page link and the live poll keep the filters.
    assert f"mailbox={box.pk}" in page.split("hx-get=")[1].split(">")[0]


def test_values_within_one_filter_are_alternatives(tenant, admin):
    me = Membership.objects.get(user=admin)
    a = f.ticket(tenant, "New", status=Status.NEW)
    b = f.ticket(tenant, "Pending", status=Status.PENDING)
    f.ticket(tenant, "Solved", status=Status.SOLVED)
    unassigned_or_admin = lists.Filters(assignee=[0, admin.pk], status=[Status.NEW, Status.PENDING])
    assert set(_numbers(lists.ticket_rows(me, view="all", filters=unassigned_or_admin))) == {
        a.number,
        b.number,
    }


def test_a_ticket_with_two_chosen_tags_is_listed_once(tenant, admin):
    me = Membership.objects.get(user=admin)
    x, y = f.tag(tenant, "x"), f.tag(tenant, "y")
    t = f.ticket(tenant, tags=[x, y])
    assert _numbers(lists.ticket_rows(me, view="all", filters=lists.Filters(tag=[x.pk, y.pk]))) == [t.number]


def test_invalid_filter_values_are_ignored(client, tenant, admin):
    t = f.ticket(tenant)
    client.force_login(admin)
    response = client.get(
        reverse("tickets:list", args=["acme", "all"])
        + "?status=bogus&queue=abc&created_from=notadate&after=%%%"
    )
    assert response.status_code == 200
    assert f"#{t.number}<" in response.content.decode()


# --- keyset pagination ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", list(lists.SORTS))
def test_keyset_pages_are_complete_and_stable_while_new_tickets_arrive(tenant, admin, sort):
    me = Membership.objects.get(user=admin)
    start = timezone.now() - timedelta(days=2)
    tickets = []
    for i in range(23):
        # Pairs share timestamps and priorities, so the id must break ties.
        at = start + timedelta(minutes=i // 2)
        tickets.append(f.ticket(tenant, f"T{i}", at=at, priority=1 + i % 4, reindex=False))
    expected = {t.number for t in tickets}
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page = lists.ticket_rows(me, view="all", sort=sort, cursor=cursor, size=5)
        seen += _numbers(page)
        pages += 1
        # Tickets keep arriving between pages: they sort before the cursor (or after the last row for
        # "oldest"), and must neither shift nor duplicate what follows.
        f.ticket(tenant, f"Arrived during page {pages}", reindex=False, priority=1)
        if not page.has_more:
            break
        cursor = page.next_cursor
    arrived = set(Ticket.objects.filter(title__startswith="Arrived").values_list("number", flat=True))
    assert len(seen) == len(set(seen)), "a ticket appeared on two pages"
    assert expected <= set(seen), f"missed: {expected - set(seen)}"
    assert set(seen) - expected <= arrived
    assert pages >= 5


def test_next_page_link_walks_the_whole_list_over_http(client, tenant, admin):
    for i in range(120):
        f.ticket(tenant, f"Row {i}", reindex=False, body=None, at=timezone.now() - timedelta(minutes=i))
    client.force_login(admin)
    url = reverse("tickets:list", args=["acme", "all"]) + "?sort=newest"
    numbers = []
    while url:
        page = client.get(url).content.decode()
        numbers += [int(n) for n in re.findall(r'aria-label="Select #(\d+)"', page)]
        nxt = re.search(r'href="(\?[^"]*after=[^"]+)" data-next-page', page)
        url = (
            reverse("tickets:list", args=["acme", "all"]) + nxt.group(1).replace("&amp;", "&")
            if nxt
            else None
        )
    assert len(numbers) == 120 == len(set(numbers))
    assert numbers == sorted(numbers)  # newest first: created one minute apart, oldest last


def test_a_tampered_cursor_starts_from_the_first_page(tenant, admin):
    me = Membership.objects.get(user=admin)
    t = f.ticket(tenant)
    for cursor in ("garbage", "W1tdXQ", "WyJub3QtYS1kYXRlIiwgMV0"):
        page = lists.ticket_rows(me, view="all", cursor=cursor)
        assert page.is_first and _numbers(page) == [t.number]


# --- counters and unread -------------------------------------------------------------------------------------


def test_counters_count_only_what_the_member_may_see(tenant, admin, agent):
    vip = f.queue(tenant, "VIP", restricted=True)
    support = f.queue(tenant, "Support")
    f.ticket(tenant, "mine", assignee=agent, queue=support)
    f.ticket(tenant, "free", queue=support)
    f.ticket(tenant, "waiting", status=Status.PENDING)
    f.ticket(tenant, "done", status=Status.SOLVED)
    f.ticket(tenant, "secret", queue=vip)
    counts = lists.view_counts(Membership.objects.get(user=agent))
    assert counts["views"] == {"mine": 1, "unassigned": 2, "open": 3, "pending": 1}
    assert counts["queues"] == {support.pk: 2}
    admin_counts = lists.view_counts(Membership.objects.get(user=admin))
    assert admin_counts["views"]["open"] == 4 and admin_counts["queues"][vip.pk] == 1


def test_ticket_is_unread_until_opened_and_again_after_a_new_message(client, tenant, agent):
    me = Membership.objects.get(user=agent)
    t = f.ticket(tenant)

    def unread():
        return t.number in _numbers(lists.ticket_rows(me, view="all", filters=lists.Filters(unread=True)))

    assert unread()
    client.force_login(agent)
    client.get(reverse("tickets:detail", args=["acme", t.number]))
    assert not unread()
    later = timezone.now() + timedelta(seconds=1)
    f.message(t, text="One more thing", at=later)
    Ticket.objects.filter(pk=t.pk).update(last_message_at=later)
    assert unread()


def test_mark_unread_shows_the_ticket_unread_again(client, tenant, agent):
    me = Membership.objects.get(user=agent)
    t = f.ticket(tenant)
    client.force_login(agent)
    client.get(reverse("tickets:detail", args=["acme", t.number]))
    response = client.post(reverse("tickets:unread", args=["acme", t.number]))
    assert response.status_code == 302
    assert t.number in _numbers(lists.ticket_rows(me, view="all", filters=lists.Filters(unread=True)))
    page = client.get(reverse("tickets:list", args=["acme", "all"])).content.decode()
    assert 'class="ticket-row is-unread"' in page


def test_unread_is_per_agent(client, tenant, admin, agent):
    t = f.ticket(tenant)
    client.force_login(admin)
    client.get(reverse("tickets:detail", args=["acme", t.number]))
    assert t.number in _numbers(
        lists.ticket_rows(Membership.objects.get(user=agent), view="all", filters=lists.Filters(unread=True))
    )


# --- live updates --------------------------------------------------------------------------------------------


def test_poll_says_nothing_when_nothing_changed_and_sends_rows_when_a_ticket_arrives(client, tenant, agent):
    f.ticket(tenant, "Old news", at=timezone.now() - timedelta(hours=1))
    client.force_login(agent)
    since = timezone.now()
    url = reverse("tickets:changes", args=["acme"])
    params = {"view": "open", "since": since.isoformat()}
    assert client.get(url, params).status_code == 204
    f.ticket(tenant, "Fresh ticket")
    response = client.get(url, params)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Fresh ticket" in html and "Old news" in html
    assert 'id="nav-views" class="nav-views" hx-swap-oob="true"' in html  # counters refresh too
    assert 'hx-get="/acme/tickets/changes/?' in html  # the next poll, with a newer `since`


def test_poll_ignores_tickets_the_agent_cannot_see(client, tenant, agent):
    client.force_login(agent)
    since = timezone.now()
    f.ticket(tenant, "Secret", queue=f.queue(tenant, "VIP", restricted=True))
    response = client.get(
        reverse("tickets:changes", args=["acme"]), {"view": "open", "since": since.isoformat()}
    )
    assert response.status_code == 204


def test_poll_keeps_the_lists_filters(client, tenant, agent):
    vip = f.tag(tenant, "vip")
    client.force_login(agent)
    since = timezone.now() - timedelta(seconds=1)
    f.ticket(tenant, "Tagged", tags=[vip])
    f.ticket(tenant, "Untagged")
    html = client.get(
        reverse("tickets:changes", args=["acme"]), {"view": "open", "since": since.isoformat(), "tag": vip.pk}
    ).content.decode()
    assert "Tagged" in html and "Untagged" not in html


# --- bulk actions --------------------------------------------------------------------------------------------


def _bulk(client, **data):
    return client.post(reverse("tickets:bulk", args=["acme"]), {"next": "/acme/views/all/", **data})


def test_bulk_assign_status_tag_and_queue(client, tenant, admin, agent):
    a, b, c = f.ticket(tenant, "A"), f.ticket(tenant, "B"), f.ticket(tenant, "C")
    billing = f.queue(tenant, "Billing")
    client.force_login(agent)
    assert (
        _bulk(client, action="assign", assignee=admin.pk, ids=[a.pk, b.pk])["Location"] == "/acme/views/all/"
    )
    _bulk(client, action="status", status="pending", ids=[a.pk, c.pk])
    _bulk(client, action="tag", tag="urgent-billing", ids=[b.pk, c.pk])
    _bulk(client, action="queue", queue=billing.pk, ids=[a.pk])
    for t in (a, b, c):
        t.refresh_from_db()
    assert (a.assignee, b.assignee, c.assignee) == (admin, admin, None)
    assert (a.status, b.status, c.status) == ("pending", "new", "pending")
    assert [t.name for t in b.tags.all()] == ["urgent-billing"] == [t.name for t in c.tags.all()]
    assert a.queue == billing
    assert TicketEvent.objects.filter(ticket=a, actor=agent).count() == 3


def test_bulk_merge_moves_everything_into_the_oldest(client, tenant, agent):
    old = f.ticket(tenant, "First", at=timezone.now() - timedelta(hours=2))
    dup1, dup2 = f.ticket(tenant, "Dup 1"), f.ticket(tenant, "Dup 2")
    client.force_login(agent)
    _bulk(client, action="merge", ids=[dup2.pk, old.pk, dup1.pk])
    assert old.messages.count() == 3
    for dup in (dup1, dup2):
        dup.refresh_from_db()
        assert dup.merged_into == old and dup.status == Status.CLOSED


def test_bulk_without_a_value_changes_nothing_and_says_why(client, tenant, agent):
    t = f.ticket(tenant)
    client.force_login(agent)
    response = _bulk(client, action="status", status="", ids=[t.pk])
    t.refresh_from_db()
    assert t.status == Status.NEW
    page = client.get(response["Location"]).content.decode()
    assert "Choose a value for this action." in page


def test_bulk_redirect_stays_on_this_site(client, tenant, agent):
    t = f.ticket(tenant)
    client.force_login(agent)
    response = client.post(
        reverse("tickets:bulk", args=["acme"]),
        {"action": "read", "ids": [t.pk], "next": "https://evil.test/"},
    )
    assert response["Location"] == "/acme/"


def test_sort_in_the_url_orders_the_list(client, tenant, admin):
    now = timezone.now()
    low = f.ticket(tenant, "Low", priority=Priority.LOW, at=now - timedelta(hours=1))
    urgent = f.ticket(tenant, "Urgent", priority=Priority.URGENT, at=now - timedelta(hours=2))
    newest = f.ticket(tenant, "Newest", at=now)
    client.force_login(admin)

    def order(sort: str) -> list[int]:
        page = client.get(reverse("tickets:list", args=["acme", "all"]), {"sort": sort}).content.decode()
        return [int(n) for n in re.findall(r'aria-label="Select #(\d+)"', page)]

    assert order("activity") == [newest.number, low.number, urgent.number]
    assert order("priority") == [urgent.number, newest.number, low.number]
    assert order("oldest") == [urgent.number, low.number, newest.number]


def test_outsider_gets_404_on_lists_polls_and_bulk(client, tenant, outsider):
    t = f.ticket(tenant)
    client.force_login(outsider)
    for url in (
        reverse("tickets:inbox", args=["acme"]),
        reverse("tickets:list", args=["acme", "all"]),
        reverse("tickets:changes", args=["acme"]) + "?view=all&since=2000-01-01T00:00:00",
    ):
        assert client.get(url).status_code == 404, url
    assert (
        client.post(
            reverse("tickets:bulk", args=["acme"]), {"action": "status", "status": "solved", "ids": [t.pk]}
        ).status_code
        == 404
    )
    # Under their own workspace, our ticket ids do nothing either.
    client.post(
        reverse("tickets:bulk", args=["globex"]), {"action": "status", "status": "solved", "ids": [t.pk]}
    )
    t.refresh_from_db()
    assert t.status == Status.NEW


def test_cached_counters_follow_every_ticket_change(client, tenant, agent):
    me = Membership.objects.get(user=agent)
    t = f.ticket(tenant)
    assert lists.cached_view_counts(me)["views"]["open"] == 1
    client.force_login(agent)
    client.post(reverse("tickets:fields", args=["acme", t.number]), {"status": "solved", "priority": 2})
    assert lists.cached_view_counts(me)["views"]["open"] == 0
    f.ticket(tenant, "Another")
    assert lists.cached_view_counts(me)["views"]["open"] == 1


def test_a_replies_first_queue_lists_customer_replies_above_new_tickets_across_pages(tenant, admin):
    me = Membership.objects.get(user=admin)
    queue = f.queue(tenant, "Support")
    queue.replies_first = True
    queue.save()
    now = timezone.now()
    new = [
        f.ticket(tenant, f"New {i}", queue=queue, at=now - timedelta(minutes=i), reindex=False)
        for i in range(4)
    ]
    replies = [
        f.ticket(
            tenant,
            f"Reply {i}",
            queue=queue,
            at=now - timedelta(hours=2, minutes=i),
            status=Status.OPEN,
            first_response_at=now - timedelta(days=1),
            reindex=False,
        )
        for i in range(3)
    ]
    seen, cursor = [], None
    while True:
        page = lists.ticket_rows(me, view="open", queue=queue, cursor=cursor, size=2)
        seen += _numbers(page)
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert seen == [t.number for t in replies] + [t.number for t in new]


# --- SLA chip ------------------------------------------------------------------------------------------------


def _chip(page: str, ticket) -> str:
    """The SLA cell of a ticket's row: '' when empty, else 'tone|text'."""
    row = re.search(rf'<tr [^>]*id="row-{ticket.pk}".*?</tr>', page, re.S).group(0)
    cell = re.search(r'<td class="c-sla">(.*?)</td>', row, re.S)
    assert cell is not None, "no SLA column"
    chip = re.search(r'class="sla sla-(\w+)".*?<span data-sla-text>([^<]*)</span>', cell.group(1), re.S)
    return f"{chip.group(1)}|{chip.group(2)}" if chip else ""


def test_rows_show_the_next_sla_deadline_as_a_chip(client, tenant, agent):
    from tickets.models import SlaPolicy

    billing = f.queue(tenant, "Billing")
    SlaPolicy.objects.create(
        tenant=tenant,
        name="Standard",
        first_response_minutes=180,
        resolution_minutes=24 * 60,
        business_hours_only=False,
    )
    now = timezone.now()
    fresh = f.ticket(tenant, "Fresh", at=now - timedelta(minutes=1))
    late = f.ticket(tenant, "Late", at=now - timedelta(hours=3, minutes=35, seconds=20))
    soon = f.ticket(tenant, "Soon", at=now - timedelta(hours=2, minutes=30))
    answered = f.ticket(
        tenant, "Answered", at=now - timedelta(hours=4, minutes=59), status=Status.OPEN, first_response_at=now
    )
    solved = f.ticket(tenant, "Solved late", at=now - timedelta(days=3), status=Status.SOLVED)
    # A more specific policy without targets applies to the billing queue: no chip there.
    SlaPolicy.objects.create(tenant=tenant, name="Billing", queue=billing, business_hours_only=False)
    exempt = f.ticket(tenant, "Billing question", queue=billing, at=now - timedelta(days=2))
    client.force_login(agent)
    page = client.get(reverse("tickets:list", args=["acme", "all"])).content.decode()
    assert _chip(page, fresh) == "ok|due in 2h"  # the first response, 2h 59m away
    assert _chip(page, late) == "over|overdue 35m"  # red
    assert _chip(page, soon) == "soon|due in 29m"  # amber within the last hour
    assert _chip(page, answered) == "ok|due in 19h"  # answered: the resolution is next
    assert _chip(page, solved) == ""  # solved and closed tickets race nothing
    assert _chip(page, exempt) == ""  # no target applies
    assert 'title="First response due' in page and 'title="Resolution due' in page


def test_no_sla_column_without_policies(client, tenant, agent):
    f.ticket(tenant, "Anything")
    client.force_login(agent)
    page = client.get(reverse("tickets:list", args=["acme", "open"])).content.decode()
    assert 'class="c-sla"' not in page and "data-sla-due" not in page


def test_sla_chips_keep_list_queries_flat(client, tenant, admin, django_assert_max_num_queries):
    """Business hours and policies are read once per page, never per row."""
    from tickets.models import BusinessHours, SlaPolicy

    queue = f.queue(tenant, "Support")
    BusinessHours.objects.create(tenant=tenant, weekdays=[0, 1, 2, 3, 4, 5, 6], start="00:00", end="23:59")
    SlaPolicy.objects.create(tenant=tenant, name="Support", queue=queue, first_response_minutes=60)
    SlaPolicy.objects.create(tenant=tenant, name="Urgent", priority=Priority.URGENT, resolution_minutes=120)
    client.force_login(admin)
    url = reverse("tickets:list", args=["acme", "open"])
    f.many_tickets(tenant, 5, queue=queue)
    client.get(url)
    with CaptureQueriesContext(connection) as few, django_assert_max_num_queries(MAX_QUERIES):
        assert client.get(url).content.decode().count("data-sla-due") == 5
    f.many_tickets(tenant, 40, queue=queue, priority=Priority.URGENT)
    client.get(url)
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).content.decode().count("data-sla-due") == 45
    assert len(many) == len(few)
    contact = Ticket.objects.filter(tenant=tenant).first().requester
    assert (
        "data-sla-due" in client.get(reverse("tickets:contact", args=["acme", contact.pk])).content.decode()
    )


# --- rows and deep pages at scale (bench/web.py) -------------------------------------------------------------


def test_rows_carry_queue_mailbox_and_assignee_also_of_a_former_member(
    tenant, agent, django_assert_max_num_queries
):
    """Queue, mailbox and assignee come from the request's lists of them; one who left is still named."""
    me = Membership.objects.select_related("tenant").get(user=agent)
    queue, box = f.queue(tenant, "Support"), f.mailbox(tenant, "SUP")
    leaver = Membership.objects.create(tenant=tenant, user=_user("leaver@acme.test"))
    gone = f.ticket(tenant, "Old", assignee=leaver.user, reindex=False)
    mine = f.ticket(tenant, "Mine", assignee=agent, queue=queue, mailbox=box, reindex=False)
    leaver.delete()
    with django_assert_max_num_queries(6):  # queues, mailboxes, members, the page, its tags, the leaver
        rows = {t.number: t for t in lists.ticket_rows(me, view="all").rows}
    row = rows[mine.number]
    assert (row.assignee, row.queue, row.mailbox) == (agent, queue, box)
    assert rows[gone.number].assignee.email == "leaver@acme.test"


def _user(email: str):
    from accounts.models import User

    return User.objects.create_user(email, "a-long-password-1")


def test_a_deep_page_starts_its_index_scan_at_the_cursor(tenant, admin):
    """The cursor bounds the first sort key on its own, which PostgreSQL can start an index range scan at."""
    me = Membership.objects.get(user=admin)
    at = timezone.now()
    tickets = [f.ticket(tenant, f"T{i}", at=at - timedelta(minutes=i), reindex=False) for i in range(3)]
    page = lists.ticket_rows(me, view="all", size=1)
    qs = lists.list_queryset(me, view="all").filter(
        lists.after(lists.SORTS["activity"].keys, [tickets[0].last_message_at, tickets[0].pk])
    )
    assert '"last_message_at" <= ' in str(qs.query)
    assert _numbers(lists.ticket_rows(me, view="all", cursor=page.next_cursor, size=5)) == [
        t.number for t in tickets[1:]
    ]


def test_list_rows_escape_what_customers_and_agents_typed(client, tenant, admin):
    """The rows are built in Python (tickets/templatetags/ticket_tags.ticket_rows): every value is escaped."""
    hostile = '<img src=x onerror="alert(1)">'
    box = f.mailbox(tenant, key="K<b>", name=f"Box {hostile}")
    requester = f.contact(tenant, name=f"Mallory {hostile}")
    t = f.ticket(
        tenant, f"Subject {hostile}", requester=requester, mailbox=box, tags=[f.tag(tenant, hostile)]
    )
    client.force_login(admin)
    page = client.get(reverse("tickets:list", args=[tenant.slug, "all"])).content.decode()
    row = re.search(rf'<tr class="ticket-row[^"]*" id="row-{t.pk}".*?</tr>', page, re.S).group(0)
    assert "<img" not in row and "<b>" not in row
    assert "Subject &lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in row
    assert '<span class="tag">&lt;img' in row and "K&lt;b&gt;" in row and "Mallory &lt;img" in row
