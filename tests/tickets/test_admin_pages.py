"""Ticket settings pages: queues, canned answers (with files), tags, close reasons and the auto-close rule."""

import datetime as dt
from itertools import count

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from accounts.access import tenant_reverse
from accounts.models import Membership
from mailboxes import blobs
from mailboxes.models import Mailbox, Visibility
from tickets import autoclose
from tickets.models import (
    AutoCloseRule,
    CannedAnswer,
    CannedAnswerAttachment,
    CloseReason,
    Queue,
    RoutingMode,
    Status,
    Tag,
    Ticket,
    TicketEvent,
)

_numbers = count(1)


def ticket(tenant, **fields) -> Ticket:
    fields.setdefault("title", "Help")
    return Ticket.objects.create(tenant=tenant, number=next(_numbers), **fields)


def client_for(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def admin_c(admin) -> Client:
    return client_for(admin)


@pytest.fixture
def agent_c(agent) -> Client:
    return client_for(agent)


@pytest.fixture
def outsider_c(outsider) -> Client:
    return client_for(outsider)


def url(tenant, name, *args) -> str:
    return tenant_reverse(tenant, f"ticket_settings:{name}", *args)


@pytest.fixture
def objects(tenant):
    """One of each object, so pages with ids can be requested."""
    q = Queue.objects.create(tenant=tenant, name="Billing")
    a = CannedAnswer.objects.create(tenant=tenant, key="hello", title="Hello", body="Hi")
    t = Tag.objects.create(tenant=tenant, name="vip")
    r = CloseReason.objects.create(tenant=tenant, name="Answered")
    return {"queue": q, "answer": a, "tag": t, "reason": r}


def pages(objects) -> list[tuple[str, str, tuple]]:
    """(method, url name, args) of every admin page."""
    q, a, t, r = objects["queue"].pk, objects["answer"].pk, objects["tag"].pk, objects["reason"].pk
    return [
        ("get", "queues", ()),
        ("get", "queue_new", ()),
        ("get", "queue_edit", (q,)),
        ("post", "queue_delete", (q,)),
        ("get", "canned", ()),
        ("get", "canned_new", ()),
        ("get", "canned_edit", (a,)),
        ("post", "canned_delete", (a,)),
        ("get", "tags", ()),
        ("post", "tag_rename", (t,)),
        ("post", "tag_merge", (t,)),
        ("post", "tag_delete", (t,)),
        ("get", "close_reasons", ()),
        ("post", "close_reason_rename", (r,)),
        ("post", "close_reason_delete", (r,)),
        ("get", "auto_close", ()),
    ]


def test_agents_get_403_on_every_admin_page(tenant, agent_c, objects):
    for method, name, args in pages(objects):
        response = getattr(agent_c, method)(url(tenant, name, *args))
        assert response.status_code == 403, name
    assert Queue.objects.filter(pk=objects["queue"].pk).exists()


def test_members_of_another_tenant_get_404_on_every_admin_page(tenant, outsider_c, objects):
    for method, name, args in pages(objects):
        response = getattr(outsider_c, method)(url(tenant, name, *args))
        assert response.status_code == 404, name
    assert Tag.objects.filter(pk=objects["tag"].pk).exists()


def test_admin_of_another_tenant_cannot_reach_objects_through_their_own_workspace(
    other_tenant, outsider_c, objects
):
    for method, name, args in pages(objects):
        if args:
            response = getattr(outsider_c, method)(url(other_tenant, name, *args))
            assert response.status_code == 404, name


def test_admin_sees_every_page(tenant, admin_c, objects):
    for method, name, args in pages(objects):
        if method == "get":
            response = admin_c.get(url(tenant, name, *args))
            assert response.status_code == 200, name
            assert b"Ticket settings" in response.content


def test_sidebar_links_to_reports_for_everyone_and_to_settings_for_admins(tenant, admin_c, agent_c):
    page = admin_c.get(tenant_reverse(tenant, "reports:overview")).content.decode()
    assert url(tenant, "queues") in page and tenant_reverse(tenant, "reports:overview") in page
    page = agent_c.get(tenant_reverse(tenant, "reports:overview")).content.decode()
    assert url(tenant, "queues") not in page


def test_settings_lists_use_a_fixed_number_of_queries(tenant, admin, admin_c, django_assert_max_num_queries):
    def grow(n):
        for i in range(n):
            q = Queue.objects.create(tenant=tenant, name=f"Queue {n}-{i}")
            q.members.add(Membership.objects.get(user=admin))
            a = CannedAnswer.objects.create(tenant=tenant, key=f"k{n}-{i}", title="T", body="B")
            CannedAnswerAttachment.objects.create(
                tenant=tenant, canned_answer=a, filename="f", sha256="0", storage_key="k"
            )
            ticket(tenant, queue=q).tags.add(Tag.objects.create(tenant=tenant, name=f"tag {n}-{i}"))
            CloseReason.objects.create(tenant=tenant, name=f"Reason {n}-{i}")

    names = ["queues", "canned", "tags", "close_reasons"]
    grow(1)
    baseline = {}
    for name in names:
        admin_c.get(url(tenant, name))
        with django_assert_max_num_queries(50) as ctx:
            admin_c.get(url(tenant, name))
        baseline[name] = len(ctx.captured_queries)
    grow(15)
    for name in names:
        with django_assert_max_num_queries(baseline[name]):
            assert admin_c.get(url(tenant, name)).status_code == 200


# --- queues -------------------------------------------------------------------------------------------------


def test_admin_creates_a_queue_with_members_and_routing(tenant, admin_c, agent, admin):
    mailbox = Mailbox.objects.create(tenant=tenant, name="Support", key="SUP", email="support@acme.test")
    agent_m = Membership.objects.get(user=agent)
    response = admin_c.post(
        url(tenant, "queue_new"),
        {
            "name": "  Technical   support ",
            "default_mailbox": mailbox.pk,
            "members": [agent_m.pk],
            "restricted": "on",
            "routing": RoutingMode.ROUND_ROBIN,
            "away_timeout_minutes": "45",
            "replies_first": "on",
        },
    )
    assert response.status_code == 302
    q = Queue.objects.get(tenant=tenant)
    assert (q.name, q.default_mailbox, q.restricted, q.routing, q.away_timeout_minutes, q.replies_first) == (
        "Technical support",
        mailbox,
        True,
        RoutingMode.ROUND_ROBIN,
        45,
        True,
    )
    assert list(q.members.all()) == [agent_m]
    listing = admin_c.get(url(tenant, "queues")).content.decode()
    assert "Technical support" in listing and "Round robin" in listing


def test_queue_form_shows_errors_next_to_the_fields(tenant, admin_c, objects, other_tenant):
    foreign = Mailbox.objects.create(tenant=other_tenant, name="Theirs", key="X", email="x@globex.test")
    response = admin_c.post(
        url(tenant, "queue_new"),
        {
            "name": "billing",
            "default_mailbox": foreign.pk,
            "routing": RoutingMode.FEWEST_OPEN,
            "away_timeout_minutes": "20000",
        },
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert "already a queue called “billing”" in form.errors["name"][0]
    assert "needs at least one member" in form.errors["members"][0]
    assert "at most a week" in form.errors["away_timeout_minutes"][0]
    assert "default_mailbox" in form.errors  # another tenant's mailbox is not a choice
    html = response.content.decode()
    assert html.count('class="field-error"') >= 4
    assert Queue.objects.filter(tenant=tenant).count() == 1


def test_admin_edits_and_deletes_a_queue_and_tickets_stay(tenant, admin_c, objects):
    q = objects["queue"]
    t = ticket(tenant, queue=q)
    response = admin_c.post(
        url(tenant, "queue_edit", q.pk),
        {"name": "Invoices", "routing": RoutingMode.MANUAL, "away_timeout_minutes": 0},
    )
    assert response.status_code == 302
    q.refresh_from_db()
    assert q.name == "Invoices"
    assert admin_c.post(url(tenant, "queue_delete", q.pk)).status_code == 302
    assert not Queue.objects.filter(pk=q.pk).exists()
    assert Ticket.objects.get(pk=t.pk).queue is None


def test_queue_delete_needs_post(tenant, admin_c, objects):
    assert admin_c.get(url(tenant, "queue_delete", objects["queue"].pk)).status_code == 405


# --- canned answers -----------------------------------------------------------------------------------------


def test_admin_creates_a_canned_answer_with_files_stored_by_content(tenant, admin_c, admin):
    pdf = SimpleUploadedFile("prices.pdf", b"%PDF-1.7 price list", content_type="application/pdf")
    txt = SimpleUploadedFile("terms.txt", b"terms", content_type="text/plain")
    response = admin_c.post(
        url(tenant, "canned_new"),
        {
            "key": "Refund",
            "title": "Refund policy",
            "body": "Hello {{ contact.first_name|default:'there' }}, see {{ ticket.reference }}.",
            "files": [pdf, txt],
        },
    )
    answer = CannedAnswer.objects.get(tenant=tenant)
    assert response.status_code == 302 and response["Location"] == url(tenant, "canned_edit", answer.pk)
    assert (answer.key, answer.created_by) == ("refund", admin)
    files = {f.filename: f for f in answer.attachments.all()}
    assert set(files) == {"prices.pdf", "terms.txt"}
    assert files["prices.pdf"].size == len(b"%PDF-1.7 price list")
    assert blobs.read(files["prices.pdf"].storage_key) == b"%PDF-1.7 price list"
    assert files["prices.pdf"].tenant == tenant


def test_canned_answer_errors_are_shown_next_to_the_fields(tenant, admin_c, objects, settings):
    settings.ATTACHMENT_MAX_BYTES = 10
    big = SimpleUploadedFile("big.bin", b"x" * 11)
    response = admin_c.post(
        url(tenant, "canned_new"),
        {"key": "Hello", "title": "", "body": "Hi {% load static %}", "files": [big]},
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "already uses the key “hello”" in errors["key"][0]
    assert "title" in errors
    assert "Only simple variables" in errors["body"][0] or "mistake" in errors["body"][0]
    assert "big.bin" in errors["files"][0]
    assert CannedAnswer.objects.filter(tenant=tenant).count() == 1
    response = admin_c.post(url(tenant, "canned_new"), {"key": "no spaces!", "title": "x", "body": "x"})
    assert "lowercase letters" in response.context["form"].errors["key"][0]


def test_canned_answer_files_are_downloaded_only_by_members_who_may_use_the_answer(
    tenant, admin, agent, outsider_c, other_tenant
):
    private = Mailbox.objects.create(
        tenant=tenant, name="Legal", key="LEG", email="legal@acme.test", visibility=Visibility.MEMBERS
    )
    open_answer = CannedAnswer.objects.create(tenant=tenant, key="a", title="A", body="A")
    legal_answer = CannedAnswer.objects.create(tenant=tenant, key="b", title="B", body="B", mailbox=private)
    blob = blobs.put(b"contract")
    make = lambda answer: CannedAnswerAttachment.objects.create(  # noqa: E731
        tenant=tenant,
        canned_answer=answer,
        filename="c.pdf",
        size=8,
        sha256=blob.sha256,
        storage_key=blob.key,
    )
    shared, legal = make(open_answer), make(legal_answer)

    response = client_for(agent).get(url(tenant, "canned_attachment", shared.pk))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"contract"
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert client_for(agent).get(url(tenant, "canned_attachment", legal.pk)).status_code == 404
    assert client_for(admin).get(url(tenant, "canned_attachment", legal.pk)).status_code == 200
    assert outsider_c.get(url(tenant, "canned_attachment", shared.pk)).status_code == 404
    assert outsider_c.get(url(other_tenant, "canned_attachment", shared.pk)).status_code == 404


def test_removing_the_last_use_of_a_file_deletes_its_bytes(
    tenant, admin_c, django_capture_on_commit_callbacks
):
    answer = CannedAnswer.objects.create(tenant=tenant, key="a", title="A", body="A")
    other = CannedAnswer.objects.create(tenant=tenant, key="b", title="B", body="B")
    blob = blobs.put(b"shared bytes")
    rows = [
        CannedAnswerAttachment.objects.create(
            tenant=tenant, canned_answer=a, filename="s.txt", sha256=blob.sha256, storage_key=blob.key
        )
        for a in (answer, other)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_c.post(url(tenant, "canned_attachment_delete", answer.pk, rows[0].pk))
    assert response.status_code == 302
    assert blobs.exists(blob.key)  # still used by the other answer
    with django_capture_on_commit_callbacks(execute=True):
        admin_c.post(url(tenant, "canned_delete", other.pk))
    assert not CannedAnswer.objects.filter(pk=other.pk).exists()
    assert not blobs.exists(blob.key)


def test_attachment_of_one_answer_cannot_be_removed_through_another(tenant, admin_c):
    a = CannedAnswer.objects.create(tenant=tenant, key="a", title="A", body="A")
    b = CannedAnswer.objects.create(tenant=tenant, key="b", title="B", body="B")
    f = CannedAnswerAttachment.objects.create(
        tenant=tenant, canned_answer=b, filename="x", sha256="0", storage_key="k"
    )
    assert admin_c.post(url(tenant, "canned_attachment_delete", a.pk, f.pk)).status_code == 404
    assert CannedAnswerAttachment.objects.filter(pk=f.pk).exists()


# --- tags ---------------------------------------------------------------------------------------------------


def test_admin_adds_renames_and_deletes_tags(tenant, admin_c, objects):
    assert admin_c.post(url(tenant, "tags"), {"name": " urgent  care "}).status_code == 302
    tag = Tag.objects.get(tenant=tenant, name="urgent care")
    t = ticket(tenant)
    t.tags.add(tag)
    assert admin_c.post(url(tenant, "tag_rename", tag.pk), {f"tag{tag.pk}-name": "urgent"}).status_code == 302
    assert list(t.tags.values_list("name", flat=True)) == ["urgent"]
    assert admin_c.post(url(tenant, "tag_delete", tag.pk)).status_code == 302
    assert not t.tags.exists()


def test_tag_errors_are_shown_next_to_the_field_and_the_row(tenant, admin_c, objects):
    response = admin_c.post(url(tenant, "tags"), {"name": "VIP"})
    assert response.status_code == 400
    assert "already a tag “VIP”" in response.context["form"].errors["name"][0]
    other = Tag.objects.create(tenant=tenant, name="billing")
    response = admin_c.post(url(tenant, "tag_rename", other.pk), {f"tag{other.pk}-name": "vip"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Merge the two instead" in html and 'class="has-error-row"' in html
    assert Tag.objects.get(pk=other.pk).name == "billing"


def test_merging_tags_moves_every_ticket_once(tenant, admin_c, objects):
    vip = objects["tag"]
    gold = Tag.objects.create(tenant=tenant, name="gold")
    both, gold_only, plain = ticket(tenant), ticket(tenant), ticket(tenant)
    both.tags.add(vip, gold)
    gold_only.tags.add(gold)
    response = admin_c.post(url(tenant, "tag_merge", gold.pk), {f"merge{gold.pk}-target": vip.pk})
    assert response.status_code == 302
    assert not Tag.objects.filter(pk=gold.pk).exists()
    assert [list(t.tags.values_list("name", flat=True)) for t in (both, gold_only, plain)] == [
        ["vip"],
        ["vip"],
        [],
    ]


def test_a_tag_cannot_be_merged_into_another_tenants_tag(tenant, admin_c, objects, other_tenant):
    theirs = Tag.objects.create(tenant=other_tenant, name="theirs")
    vip = objects["tag"]
    response = admin_c.post(url(tenant, "tag_merge", vip.pk), {f"merge{vip.pk}-target": theirs.pk})
    assert response.status_code == 400
    assert Tag.objects.filter(pk=vip.pk).exists() and Tag.objects.filter(pk=theirs.pk).exists()


# --- close reasons and auto-close ---------------------------------------------------------------------------


def test_admin_manages_close_reasons_with_errors_next_to_fields(tenant, admin_c, objects):
    assert admin_c.post(url(tenant, "close_reasons"), {"name": "Duplicate"}).status_code == 302
    response = admin_c.post(url(tenant, "close_reasons"), {"name": "answered"})
    assert response.status_code == 400
    assert "already a close reason" in response.context["form"].errors["name"][0]
    reason = objects["reason"]
    dup = CloseReason.objects.get(name="Duplicate")
    response = admin_c.post(url(tenant, "close_reason_rename", dup.pk), {f"reason{dup.pk}-name": "Answered"})
    assert response.status_code == 400 and 'class="has-error-row"' in response.content.decode()
    assert (
        admin_c.post(url(tenant, "close_reason_rename", dup.pk), {f"reason{dup.pk}-name": "Spam"}).status_code
        == 302
    )
    assert admin_c.post(url(tenant, "close_reason_delete", reason.pk)).status_code == 302
    assert list(CloseReason.objects.for_tenant(tenant).values_list("name", flat=True)) == ["Spam"]


def test_admin_sets_the_auto_close_rule(tenant, admin_c, objects):
    reason = objects["reason"]
    response = admin_c.post(url(tenant, "auto_close"), {"enabled": "on", "days": "0", "reason": reason.pk})
    assert response.status_code == 200
    assert "greater than or equal to 1" in response.context["form"].errors["days"][0]
    response = admin_c.post(url(tenant, "auto_close"), {"enabled": "on", "days": "5", "reason": reason.pk})
    assert response.status_code == 302
    rule = AutoCloseRule.objects.get(tenant=tenant)
    assert (rule.enabled, rule.days, rule.reason) == (True, 5, reason)
    assert "pending ticket" in admin_c.get(url(tenant, "auto_close")).content.decode()


@pytest.fixture
def resolution_mails(monkeypatch):
    """Records the resolution notifications asked of tickets.notifications (the outbound issue's module)."""
    from tickets import notifications

    sent: list[int] = []
    monkeypatch.setattr(notifications, "ticket_solved", lambda ticket, actor=None: sent.append(ticket.pk))
    return sent


def test_auto_close_solves_only_pending_tickets_past_n_days_with_the_reason(
    tenant, other_tenant, objects, resolution_mails, django_capture_on_commit_callbacks
):
    now = timezone.now()
    days = lambda n: now - dt.timedelta(days=n)  # noqa: E731
    rule = AutoCloseRule.objects.create(tenant=tenant, enabled=True, days=7, reason=objects["reason"])
    due = ticket(tenant, status=Status.PENDING, last_message_at=days(8), last_inbound_at=days(9))
    recent = ticket(tenant, status=Status.PENDING, last_message_at=days(6))
    customer_wrote = ticket(tenant, status=Status.PENDING, last_message_at=days(8), last_inbound_at=days(1))
    open_old = ticket(tenant, status=Status.OPEN, last_message_at=days(30))
    theirs = ticket(other_tenant, status=Status.PENDING, last_message_at=days(30))

    with django_capture_on_commit_callbacks(execute=True):
        assert autoclose.run(rule) == 1

    due.refresh_from_db()
    assert (due.status, due.close_reason) == (Status.SOLVED, "Answered")
    assert due.solved_at is not None
    statuses = Ticket.objects.filter(pk__in=[recent.pk, customer_wrote.pk, open_old.pk, theirs.pk])
    assert sorted(statuses.values_list("status", flat=True)) == sorted(
        [Status.PENDING, Status.PENDING, Status.OPEN, Status.PENDING]
    )
    assert resolution_mails == [due.pk]
    assert set(TicketEvent.objects.filter(ticket=due).values_list("field", "new")) == {
        ("status", "Solved"),
        ("close_reason", "Answered"),
    }
    rule.refresh_from_db()
    assert rule.tickets_closed == 1 and rule.last_run_at is not None
    with django_capture_on_commit_callbacks(execute=True):
        assert autoclose.run(rule) == 0  # nothing twice
    assert resolution_mails == [due.pk]


def test_auto_close_task_runs_enabled_rules_only_with_the_default_reason(
    tenant, other_tenant, resolution_mails, django_capture_on_commit_callbacks
):
    from tickets import tasks

    old = timezone.now() - dt.timedelta(days=40)
    AutoCloseRule.objects.create(tenant=tenant, enabled=True, days=30)
    AutoCloseRule.objects.create(tenant=other_tenant, enabled=False, days=1)
    ours = ticket(tenant, status=Status.PENDING, last_message_at=old)
    theirs = ticket(other_tenant, status=Status.PENDING, last_message_at=old)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.auto_close_pending_tickets.delay().get() == 1
    assert Ticket.objects.get(pk=ours.pk).close_reason == "No reply from the customer"
    assert Ticket.objects.get(pk=theirs.pk).status == Status.PENDING


def test_auto_close_queues_the_resolution_mail_to_the_customer(tenant):
    from mailboxes.models import OutboundEmail, OutboundKind
    from tickets.models import Contact

    Mailbox.objects.create(
        tenant=tenant, name="Support", key="SUP", email="support@acme.test", is_default=True
    )
    jane = Contact.objects.create(tenant=tenant, email="jane@customer.test", name="Jane Doe")
    rule = AutoCloseRule.objects.create(tenant=tenant, enabled=True, days=3)
    t = ticket(
        tenant, status=Status.PENDING, requester=jane, last_message_at=timezone.now() - dt.timedelta(days=4)
    )
    assert autoclose.run(rule) == 1
    mail = OutboundEmail.objects.get(ticket=t)
    assert (mail.kind, mail.to) == (OutboundKind.NOTIFICATION, ["jane@customer.test"])


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_queue_and_canned_answer_pages_in_chromium(sign_in, live_server, tenant, admin, agent, screenshot):
    from playwright.sync_api import expect

    from tests.conftest import make_member

    bob = make_member(tenant, "bob@acme.test", "agent", "Bob Builder")
    Membership.objects.filter(user=bob).update(is_available=False)
    box = Mailbox.objects.create(tenant=tenant, name="Support", key="SUP", email="support@acme.test")
    billing = Queue.objects.create(
        tenant=tenant, name="Billing", routing=RoutingMode.ROUND_ROBIN, replies_first=True
    )
    billing.members.set(Membership.objects.filter(tenant=tenant))
    Queue.objects.create(tenant=tenant, name="Sales", default_mailbox=box, restricted=True)
    page = sign_in(admin)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/acme/settings/queues/{billing.pk}/")
    expect(page.get_by_label("Round robin")).to_be_checked()
    page.get_by_label("Fewest open tickets").check()
    page.locator(".member-pick", has_text="Bob Builder").locator("input").uncheck()
    screenshot(page, "queue-form")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("row", name="Billing")).to_contain_text("Fewest open tickets")
    screenshot(page, "queues")

    page.goto(f"{live_server.url}/acme/settings/canned-answers/new/")
    page.get_by_label("Key").fill("bad key")
    page.get_by_label("Title").fill("Refund policy")
    page.get_by_label("Body").fill("Hi {{ contact.first_name }},\n\nwe refund within 14 days.")
    page.get_by_role("button", name="Create answer").click()
    expect(page.locator(".field-error")).to_contain_text("lowercase letters")
    page.get_by_label("Key").fill("refund")
    page.get_by_label("Attach files").set_input_files(
        [{"name": "refund-form.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 " + b"x" * 30000}]
    )
    page.get_by_role("button", name="Create answer").click()
    expect(page.get_by_role("link", name="refund-form.pdf")).to_be_visible()
    screenshot(page, "canned-answer")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_tags_and_auto_close_pages_in_chromium(sign_in, live_server, tenant, admin, screenshot):
    from playwright.sync_api import expect

    tags = {
        n: Tag.objects.create(tenant=tenant, name=n) for n in ("billing", "refund", "vip", "bug", "feature")
    }
    for i in range(12):
        t = ticket(tenant)
        t.tags.add(*list(tags.values())[: 1 + i % 4])
    CloseReason.objects.create(tenant=tenant, name="Answered")
    CloseReason.objects.create(tenant=tenant, name="No reply from the customer")
    page = sign_in(admin)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/acme/settings/tags/")
    row = page.get_by_role("row", name="refund")
    row.get_by_text("Edit").click()
    row.get_by_label("Rename").fill("billing")
    row.get_by_role("button", name="Save").click()
    expect(page.locator(".has-error-row .field-error")).to_contain_text("Merge the two instead")
    expect(page.get_by_role("row", name="refund").get_by_role("button", name="Merge")).to_be_visible()
    screenshot(page, "tags-error")
    row = page.get_by_role("row", name="refund")
    row.get_by_label("Merge into").select_option(label="billing")
    row.get_by_role("button", name="Merge").click()
    expect(page.locator(".flash")).to_contain_text("merged into “billing”")
    expect(page.get_by_role("row", name="refund")).to_have_count(0)

    page.goto(f"{live_server.url}/acme/settings/auto-close/")
    page.get_by_label("Solve pending tickets automatically").check()
    page.get_by_label("Days without an answer").fill("5")
    page.get_by_label("Close reason").select_option(label="No reply from the customer")
    page.get_by_role("button", name="Save rule").click()
    expect(page.locator(".flash")).to_contain_text("solved after 5 days")
    screenshot(page, "auto-close")
