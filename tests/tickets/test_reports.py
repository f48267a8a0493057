"""Reports: numbers on a seeded dataset equal hand-computed values; CSV export; access; bounded queries."""

import csv
import datetime as dt
import io
from itertools import count

import pytest
from django.test import Client

from accounts.access import tenant_reverse
from accounts.models import Membership
from tickets import charts, percentiles, reports, reports_csv
from tickets.models import Queue, SlaBreach, SlaPolicy, SlaTarget, Status, Ticket
from tickets.templatetags.report_tags import duration

_numbers = count(1)
H = 3600.0
START, END = dt.date(2026, 3, 2), dt.date(2026, 3, 8)
QUERY = {"start": START.isoformat(), "end": END.isoformat()}


def utc(day: int, hour: float, month: int = 3) -> dt.datetime:
    return dt.datetime(2026, month, day, tzinfo=dt.UTC) + dt.timedelta(hours=hour)


def ticket(tenant, created, *, fr=None, solved=None, **fields) -> Ticket:
    """A ticket created at `created`, first answered `fr` hours and solved `solved` hours later."""
    fields.setdefault("title", "Help")
    if solved is not None:
        fields.setdefault("status", Status.SOLVED)
        fields["solved_at"] = created + dt.timedelta(hours=solved)
    return Ticket.objects.create(
        tenant=tenant,
        number=next(_numbers),
        created_at=created,
        first_response_at=created + dt.timedelta(hours=fr) if fr is not None else None,
        **fields,
    )


@pytest.fixture
def seeded(tenant, admin, agent, other_tenant):
    """The dataset of the hand computation in the module docstring of this fixture's tests (Berlin time)."""
    tenant.timezone = "Europe/Berlin"
    tenant.save()
    support = Queue.objects.create(tenant=tenant, name="Support")
    billing = Queue.objects.create(tenant=tenant, name="Billing", restricted=True)
    billing.members.add(Membership.objects.get(user=admin))
    t = {
        1: ticket(tenant, utc(2, 8), fr=1, solved=2, assignee=agent, queue=support),
        # 23:30 UTC is 00:30 in Berlin: a ticket of 3 March.
        2: ticket(tenant, utc(2, 23.5), fr=2, solved=4, assignee=agent, queue=support),
        3: ticket(tenant, utc(3, 10), fr=3, solved=6, assignee=admin, queue=billing),
        4: ticket(tenant, utc(4, 10), fr=4, solved=8, assignee=admin, queue=billing),
        5: ticket(tenant, utc(5, 10), fr=10, status=Status.OPEN, assignee=agent, queue=support),
        6: ticket(tenant, utc(6, 10), status=Status.NEW, queue=support),
        7: ticket(tenant, utc(6, 11), status=Status.NEW),
        # Created before the period, solved in it (11 days = 264 h): counts as solved, not as created.
        8: ticket(tenant, utc(20, 10, month=2), fr=1, solved=264, assignee=admin, queue=billing),
        # 8 March 23:30 UTC is 9 March in Berlin: after the period.
        9: ticket(tenant, utc(8, 23.5), fr=0.1, status=Status.OPEN, assignee=admin, queue=billing),
    }
    ticket(other_tenant, utc(3, 10), fr=0.5, solved=1)  # another tenant: never counted
    SlaPolicy.objects.create(tenant=tenant, name="Standard", first_response_minutes=60)
    SlaBreach.objects.create(tenant=tenant, ticket=t[5], target=SlaTarget.FIRST_RESPONSE, due_at=utc(5, 11))
    SlaBreach.objects.create(tenant=tenant, ticket=t[3], target=SlaTarget.RESOLUTION, due_at=utc(3, 12))
    SlaBreach.objects.create(
        tenant=tenant, ticket=t[1], target=SlaTarget.FIRST_RESPONSE, due_at=utc(28, 9, month=2)
    )
    return t


def period(tenant):
    return reports.period_for(tenant, START, END)


def test_percentile_interpolates_like_postgresql_percentile_cont():
    assert percentiles.percentile([], 0.5) is None
    assert percentiles.percentile([7], 0.9) == 7
    assert percentiles.percentile([4, 1, 3, 2, 10], 0.5) == 3
    assert percentiles.percentile([1, 2, 3, 4, 10], 0.9) == pytest.approx(7.6)
    assert percentiles.percentile([1, 2, 3, 4], 0.5) == 2.5


def test_tickets_created_and_solved_per_day_in_the_tenants_time_zone(seeded, tenant, admin):
    report = reports.build(Membership.objects.get(user=admin), period(tenant))
    assert [(d.day.day, d.created, d.solved) for d in report.daily] == [
        (2, 1, 1),
        (3, 2, 3),
        (4, 1, 1),
        (5, 1, 0),
        (6, 2, 0),
        (7, 0, 0),
        (8, 0, 0),
    ]
    assert (report.created, report.solved, report.open_now) == (7, 5, 4)


def test_first_response_and_resolution_median_and_p90_equal_hand_computed_values(seeded, tenant, admin):
    times = reports.build(Membership.objects.get(user=admin), period(tenant)).times
    # First responses of tickets created in the period: 1, 2, 3, 4, 10 h.
    assert times.first_response.count == 5
    assert times.first_response.median == pytest.approx(3 * H)
    assert times.first_response.p90 == pytest.approx(7.6 * H)  # 4 + 0.6 * (10 - 4)
    # Resolutions of tickets solved in the period: 2, 4, 6, 8, 264 h.
    assert times.resolution.count == 5
    assert times.resolution.median == pytest.approx(6 * H)
    assert times.resolution.p90 == pytest.approx(161.6 * H)  # 8 + 0.6 * (264 - 8)


def test_backlog_by_queue_counts_open_tickets_now_largest_first(seeded, tenant, admin):
    queues = reports.build(Membership.objects.get(user=admin), period(tenant)).queues
    assert [(q.name, q.new, q.open, q.pending, q.total) for q in queues] == [
        ("Support", 1, 1, 0, 2),
        ("Billing", 0, 1, 0, 1),
        ("No queue", 1, 0, 0, 1),
    ]
    assert queues[0].oldest == utc(5, 10)


def test_admins_see_every_agent_with_backlog_solved_and_times(seeded, tenant, admin, agent):
    rows = {a.name: a for a in reports.build(Membership.objects.get(user=admin), period(tenant)).agents}
    assert list(rows) == ["Adam Admin", "Agnes Agent", "Unassigned"]
    agnes, adam, nobody = rows["Agnes Agent"], rows["Adam Admin"], rows["Unassigned"]
    assert (agnes.backlog, agnes.open, agnes.solved) == (1, 1, 2)
    assert agnes.times.first_response.median == pytest.approx(2 * H)  # 1, 2, 10 h
    assert agnes.times.first_response.p90 == pytest.approx(8.4 * H)  # 2 + 0.8 * 8
    assert agnes.times.resolution.median == pytest.approx(3 * H)  # 2, 4 h
    assert agnes.times.resolution.p90 == pytest.approx(3.8 * H)
    assert (adam.backlog, adam.solved) == (1, 3)
    assert adam.times.first_response.median == pytest.approx(3.5 * H)  # 3, 4 h
    assert adam.times.resolution.median == pytest.approx(8 * H)  # 6, 8, 264 h
    assert adam.times.resolution.p90 == pytest.approx(212.8 * H)  # 8 + 0.8 * 256
    assert (nobody.new, nobody.backlog, nobody.solved) == (2, 2, 0)


def test_agents_see_their_own_row_and_only_tickets_they_may_see(seeded, tenant, agent):
    report = reports.build(Membership.objects.get(user=agent), period(tenant))
    assert [a.name for a in report.agents] == ["Agnes Agent"]
    # The restricted Billing queue (tickets 3, 4, 8, 9) is not theirs.
    assert (report.created, report.solved, report.open_now) == (5, 2, 3)
    assert [q.name for q in report.queues] == ["Support", "No queue"]
    assert report.times.resolution.count == 2
    assert [(r.name, r.first_response, r.resolution) for r in report.sla.rows] == [("Support", 1, 0)]


def test_sla_breaches_due_in_the_period_are_counted_per_queue_and_target(seeded, tenant, admin):
    sla = reports.build(Membership.objects.get(user=admin), period(tenant)).sla
    assert sla.has_policies
    assert sorted((r.name, r.first_response, r.resolution) for r in sla.rows) == [
        ("Billing", 0, 1),
        ("Support", 1, 0),
    ]
    assert (sla.first_response, sla.resolution, sla.total) == (1, 1, 2)


def test_report_page_shows_the_numbers_and_a_chart(seeded, tenant, admin):
    c = Client()
    c.force_login(admin)
    response = c.get(tenant_reverse(tenant, "reports:overview"), QUERY)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<svg" in html and "Tickets created and solved per day" in html
    assert "3 March" not in html  # dates are formatted short
    assert "Tue 3 Mar: 2 created" in html and "Tue 3 Mar: 3 solved" in html
    assert "3 h" in html and "6 h" in html  # medians
    assert 'style="' not in html  # the CSP forbids inline styles


def test_csv_export_of_each_table(seeded, tenant, admin):
    c = Client()
    c.force_login(admin)

    def table(name):
        response = c.get(tenant_reverse(tenant, "reports:export", name), QUERY)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        assert f'filename="acme-{name}-2026-03-02-2026-03-08.csv"' in response["Content-Disposition"]
        return list(csv.reader(io.StringIO(response.content.decode())))

    assert table("daily") == [
        ["date", "created", "solved"],
        ["2026-03-02", "1", "1"],
        ["2026-03-03", "2", "3"],
        ["2026-03-04", "1", "1"],
        ["2026-03-05", "1", "0"],
        ["2026-03-06", "2", "0"],
        ["2026-03-07", "0", "0"],
        ["2026-03-08", "0", "0"],
    ]
    assert table("times") == [
        ["measure", "tickets", "median_hours", "p90_hours"],
        ["first_response", "5", "3.00", "7.60"],
        ["resolution", "5", "6.00", "161.60"],
    ]
    queues = table("queues")
    assert queues[0] == ["queue", "new", "open", "pending", "total", "oldest_created_at"]
    assert queues[1] == ["Support", "1", "1", "0", "2", "2026-03-05T11:00:00+01:00"]
    agents = table("agents")
    assert agents[2][:6] == ["Agnes Agent", "0", "1", "0", "1", "2"]
    assert agents[2][6:] == ["2.00", "8.40", "3.00", "3.80"]
    assert table("sla")[1:] == [["Billing", "0", "1", "1"], ["Support", "1", "0", "1"]]
    assert c.get(tenant_reverse(tenant, "reports:export", "nope"), QUERY).status_code == 404


def test_csv_cells_that_spreadsheets_would_run_as_formulas_are_defused(tenant, admin):
    Queue.objects.create(tenant=tenant, name="=HYPERLINK(1)")
    Ticket.objects.create(tenant=tenant, number=1, title="x", queue=Queue.objects.get(tenant=tenant))
    report = reports.build(Membership.objects.get(user=admin), reports.period_for(tenant))
    assert "'=HYPERLINK(1)" in reports_csv.to_csv(report, "queues")


def test_reports_are_for_members_only(tenant, outsider, other_tenant, agent):
    c = Client()
    c.force_login(outsider)
    assert c.get(tenant_reverse(tenant, "reports:overview")).status_code == 404
    assert c.get(tenant_reverse(tenant, "reports:export", "daily")).status_code == 404
    assert Client().get(tenant_reverse(tenant, "reports:overview")).status_code == 302
    c.force_login(agent)
    assert c.get(tenant_reverse(tenant, "reports:overview")).status_code == 200


def test_reversed_range_shows_an_error_and_ranges_are_capped_at_a_year(tenant, admin):
    c = Client()
    c.force_login(admin)
    response = c.get(tenant_reverse(tenant, "reports:overview"), {"start": "2026-03-08", "end": "2026-03-01"})
    assert "The end date is before the start date." in response.content.decode()
    long = reports.period_for(tenant, dt.date(2020, 1, 1), dt.date(2026, 1, 1))
    assert long.length == reports.MAX_DAYS
    assert reports.period_for(tenant, days=7).length == 7


def test_report_page_queries_do_not_grow_with_tickets_agents_or_queues(
    seeded, tenant, admin, django_assert_max_num_queries
):
    from tests.conftest import make_member

    c = Client()
    c.force_login(admin)
    c.get(tenant_reverse(tenant, "reports:overview"), QUERY)  # warm caches (content types, session)
    with django_assert_max_num_queries(16) as small:
        c.get(tenant_reverse(tenant, "reports:overview"), QUERY)
    for i in range(6):
        member = make_member(tenant, f"extra{i}@acme.test", "agent")
        queue = Queue.objects.create(tenant=tenant, name=f"Queue {i}")
        for day in range(2, 8):
            ticket(tenant, utc(day, 9), fr=i + 1, solved=i + 2, assignee=member, queue=queue)
            ticket(tenant, utc(day, 10), status=Status.OPEN, assignee=member, queue=queue)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = c.get(tenant_reverse(tenant, "reports:overview"), QUERY)
    assert response.context["report"].created == 7 + 72


def test_chart_scales_bars_to_a_round_axis():
    rows = [
        reports.DayRow(dt.date(2026, 3, d), created, solved) for d, created, solved in [(1, 0, 0), (2, 7, 3)]
    ]
    chart = charts.daily_bars(rows)
    assert [t.label for t in chart.y_ticks] == ["0", "2.5", "5", "7.5", "10"]
    created = chart.series[0][2]
    assert created[0].height == 0
    assert created[1].height == pytest.approx((chart.bottom - chart.top) * 0.7, abs=0.01)
    assert created[1].title == "Mon 2 Mar: 7 created"
    assert charts.nice_ceiling(0) == 4 and charts.nice_ceiling(11) == 20 and charts.nice_ceiling(101) == 200


def test_durations_read_like_people_say_them():
    assert [duration(s) for s in (None, 20, 45 * 60, 3 * H, 3 * H + 20 * 60, 50 * H)] == [
        "—",
        "< 1 min",
        "45 min",
        "3 h",
        "3 h 20 min",
        "2 d 2 h",
    ]


def test_percentiles_are_computed_by_the_database_on_postgresql(seeded, tenant, admin):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("percentile_cont is PostgreSQL's; SQLite uses the Python fallback tested above")
    membership = Membership.objects.select_related("tenant").get(user=admin)
    with CaptureQueriesContext(connection) as ctx:
        report = reports.build(membership, period(tenant))
    sql = [q["sql"] for q in ctx.captured_queries if "percentile_cont" in q["sql"]]
    assert len(sql) == 2  # overall, and per agent
    assert "FILTER (WHERE" in sql[0]
    assert report.times.first_response.p90 == pytest.approx(7.6 * H)
    assert len(ctx.captured_queries) <= 10


def demo_month(tenant, agents, queues) -> None:
    """Thirty days of believable traffic up to now: a weekly rhythm, most tickets answered within hours."""
    import random

    from django.utils import timezone

    rng = random.Random(7)
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    for days_ago in range(29, -1, -1):
        day = now - dt.timedelta(days=days_ago)
        weekday = day.weekday()
        for _ in range(rng.randint(2, 5) if weekday >= 5 else rng.randint(8, 16)):
            created = day.replace(hour=rng.randint(7, 18)) - dt.timedelta(minutes=rng.randint(0, 59))
            if created > now:
                created -= dt.timedelta(hours=12)
            fr = rng.choice([0.2, 0.5, 1, 1.5, 2, 3, 4, 6, 9, 20])
            age_h = (now - created).total_seconds() / 3600
            solved = fr + rng.choice([1, 3, 6, 12, 26, 50])
            status = Status.SOLVED if solved < age_h and rng.random() < 0.85 else rng.choice(list(Status)[:3])
            ticket(
                tenant,
                created,
                fr=fr if fr < age_h else None,
                solved=solved if status == Status.SOLVED else None,
                status=status,
                assignee=rng.choice([*agents, None]) if status != Status.NEW else None,
                queue=rng.choice(queues),
            )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_reports_page_in_chromium(sign_in, live_server, tenant, admin, agent, screenshot):
    from playwright.sync_api import expect

    from tests.conftest import make_member

    bob = make_member(tenant, "bob@acme.test", "agent", "Bob Builder")
    queues = [Queue.objects.create(tenant=tenant, name=n) for n in ("Billing", "Technical support", "Sales")]
    demo_month(tenant, [admin, agent, bob], queues)
    SlaPolicy.objects.create(tenant=tenant, name="Standard", first_response_minutes=240)
    for t in Ticket.objects.filter(first_response_at__isnull=False)[:9]:
        SlaBreach.objects.create(
            tenant=tenant, ticket=t, target=SlaTarget.FIRST_RESPONSE, due_at=t.created_at
        )
    page = sign_in(admin)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/acme/reports/")
    expect(page.get_by_role("heading", name="Reports")).to_be_visible()
    expect(page.locator("svg.volume-chart rect")).not_to_have_count(0)
    expect(page.locator(".segmented a.is-active")).to_have_text("30 days")
    expect(page.get_by_role("row", name="Bob Builder")).to_be_visible()
    screenshot(page, "reports")
    page.get_by_role("link", name="7 days").click()
    expect(page.locator(".report-range")).to_contain_text("7 days")
    with page.expect_download() as download:
        page.locator("#volume-title ~ .card-tools a", has_text="CSV").click()
    assert download.value.suggested_filename.startswith("acme-daily-")
