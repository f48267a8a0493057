"""The ticket page: the thread, the side panel, history, notes; and the contact and customer pages."""

import re

import pytest
from django.urls import reverse

from mailboxes.models import OutboundEmail
from tests.tickets import factories as f
from tickets.models import Message, MessageKind, Status, Ticket, TicketEvent

pytestmark = pytest.mark.django_db


def detail(client, t: Ticket, **params) -> str:
    response = client.get(reverse("tickets:detail", args=["acme", t.number]), params)
    assert response.status_code == 200
    return response.content.decode()


def test_outsider_gets_404_on_the_ticket_page(client, tenant, outsider):
    t = f.ticket(tenant)
    client.force_login(outsider)
    assert client.get(reverse("tickets:detail", args=["acme", t.number])).status_code == 404


def test_thread_shows_each_kind_of_entry_distinctly_and_in_order(client, tenant, admin, agent):
    t = f.ticket(tenant, "Help", body="First question")
    f.message(t, kind=MessageKind.NOTE, text="Internal thought", author=agent)
    f.message(t, kind=MessageKind.OUTBOUND, text="Our answer", author=agent)
    f.message(
        t,
        kind=MessageKind.AUTOMATIC,
        text="Out of office",
        subject="Auto: Help",
        from_addr="ooo@example.test",
    )
    client.force_login(admin)
    page = detail(client, t)
    kinds = re.findall(r'class="msg msg-(\w+)"', page)
    assert kinds == ["inbound", "note", "outbound", "automatic"]
    assert (
        page.index("First question")
        < page.index("Internal thought")
        < page.index("Our answer")
        < page.index("Out of office")
    )
    assert "Internal note" in page and "replied" in page


def test_customer_html_is_only_in_a_sandboxed_iframe(client, tenant, admin):
    t = f.ticket(tenant, body=None, html="<p>Secret <b>markup</b><script>alert(1)</script></p>")
    client.force_login(admin)
    page = detail(client, t)
    assert "<b>markup</b>" not in page and "alert(1)" not in page
    frames = re.findall(r"<iframe[^>]*>", page)
    assert len(frames) == 1
    sandbox = re.search(r'sandbox="([^"]*)"', frames[0]).group(1).split()
    assert "allow-scripts" not in sandbox and "allow-forms" not in sandbox
    assert not [s for s in sandbox if s.startswith("allow-top-navigation")]
    body = client.get(re.search(r'src="([^"]+)"', frames[0]).group(1))
    assert "<b>markup</b>" in body.content.decode() and "<script" not in body.content.decode()


def test_show_images_appears_only_for_messages_with_remote_images(client, tenant, admin):
    with_pixel = f.ticket(tenant, body=None, html='<p>Hi</p><img src="https://tracker.test/p.gif">')
    plain = f.ticket(tenant, body=None, html="<p>Hi</p>")
    client.force_login(admin)
    assert "Show images" in detail(client, with_pixel)
    assert "Show images" not in detail(client, plain)
    body_url = reverse("tickets:message_body", args=["acme", with_pixel.number, with_pixel.messages.get().pk])
    assert ' src="https://tracker.test/p.gif"' not in client.get(body_url).content.decode()
    assert ' src="https://tracker.test/p.gif"' in client.get(body_url + "?images=1").content.decode()


def test_plain_text_bodies_are_escaped(client, tenant, admin):
    t = f.ticket(tenant, body="<img src=x onerror=alert(1)> and javascript:alert(2)")
    client.force_login(admin)
    page = detail(client, t)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'href="javascript:' not in page


def test_attachments_show_name_size_and_type(client, tenant, admin):
    t = f.ticket(tenant)
    f.attachment(t.messages.get(), "report.pdf", b"x" * 2048, "application/pdf")
    client.force_login(admin)
    page = detail(client, t)
    assert "report.pdf" in page and "2.0\xa0KB · application/pdf" in page


def test_delivery_state_and_threading_signal_are_shown_on_messages(client, tenant, admin, agent):
    t = f.ticket(tenant)
    Message.objects.filter(ticket=t).update(threading_signal="subject-token")
    reply = f.message(t, kind=MessageKind.OUTBOUND, text="Answer", author=agent)
    OutboundEmail.objects.create(
        tenant=tenant,
        kind="reply",
        ticket=t,
        ticket_message=reply,
        from_addr="support@acme.test",
        to=["x@y.test"],
        message_id="<r1@acme.test>",
        status="failed",
        error_message="The recipient's server refused the address.",
        error_advice="Check the address for typos.",
    )
    client.force_login(admin)
    page = detail(client, t)
    assert "Threaded by the signed ticket token in the subject" in page
    assert "Not delivered." in page and "Check the address for typos." in page


def test_side_panel_changes_are_saved_recorded_and_shown_in_history(client, tenant, admin, agent):
    billing = f.queue(tenant, "Billing")
    vip = f.tag(tenant, "vip")
    t = f.ticket(tenant)
    client.force_login(admin)
    response = client.post(
        reverse("tickets:fields", args=["acme", t.number]),
        {"status": "pending", "priority": 4, "queue": billing.pk, "assignee": agent.pk, "tags": [vip.pk]},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert 'id="ticket-fields"' in response.content.decode() and "Saved" in response.content.decode()
    t.refresh_from_db()
    assert (t.status, t.priority, t.queue, t.assignee) == ("pending", 4, billing, agent)
    assert list(t.tags.all()) == [vip]
    assert TicketEvent.objects.filter(ticket=t).count() == 5
    history = detail(client, t, tab="history")
    for line in (
        "changed status from <strong>New</strong> to <strong>Pending</strong>",
        "changed priority from <strong>Normal</strong> to <strong>Urgent</strong>",
        "set the queue to <strong>Billing</strong>",
        "set the assignee to <strong>Agnes Agent</strong>",
        "set tags to <strong>vip</strong>",
    ):
        assert line in history


def test_saving_the_panel_unchanged_records_nothing(client, tenant, admin):
    t = f.ticket(tenant)
    client.force_login(admin)
    client.post(
        reverse("tickets:fields", args=["acme", t.number]),
        {"status": "new", "priority": 2, "queue": "", "assignee": ""},
    )
    assert not TicketEvent.objects.filter(ticket=t).exists()


def test_solving_sets_solved_at_and_reopening_clears_it(client, tenant, admin):
    t = f.ticket(tenant)
    client.force_login(admin)
    url = reverse("tickets:fields", args=["acme", t.number])
    client.post(url, {"status": "solved", "priority": 2})
    t.refresh_from_db()
    assert t.solved_at is not None
    client.post(url, {"status": "open", "priority": 2})
    t.refresh_from_db()
    assert t.solved_at is None and t.status == Status.OPEN


def test_assignee_must_be_a_member_who_may_answer(client, tenant, admin, outsider):
    t = f.ticket(tenant)
    client.force_login(admin)
    client.post(
        reverse("tickets:fields", args=["acme", t.number]),
        {"status": "new", "priority": 2, "assignee": outsider.pk},
    )
    t.refresh_from_db()
    assert t.assignee is None


def test_agents_are_offered_only_queues_they_may_see(client, tenant, agent):
    f.queue(tenant, "Open queue")
    f.queue(tenant, "Executive", restricted=True)
    t = f.ticket(tenant)
    client.force_login(agent)
    page = detail(client, t)
    assert "Open queue" in page and "Executive" not in page


def test_title_edit_is_recorded(client, tenant, admin):
    t = f.ticket(tenant, "Old title")
    client.force_login(admin)
    client.post(reverse("tickets:title", args=["acme", t.number]), {"title": "  New   title "})
    t.refresh_from_db()
    assert t.title == "New title"
    assert TicketEvent.objects.get(ticket=t, field="title").old == "Old title"


def test_new_tag_is_created_once_and_added(client, tenant, admin):
    t = f.ticket(tenant)
    client.force_login(admin)
    for _ in range(2):
        client.post(reverse("tickets:new_tag", args=["acme", t.number]), {"name": "refund"})
    assert [tag.name for tag in t.tags.all()] == ["refund"]
    assert tenant.tags.count() == 1


def test_notes_are_added_to_the_thread(client, tenant, agent):
    t = f.ticket(tenant)
    client.force_login(agent)
    response = client.post(reverse("tickets:note", args=["acme", t.number]), {"body": "Called them, waiting"})
    note = Message.objects.get(ticket=t, kind=MessageKind.NOTE)
    assert response["Location"].endswith(f"#m-{note.pk}")
    assert "Called them, waiting" in detail(client, t)
    empty = client.post(reverse("tickets:note", args=["acme", t.number]), {"body": "   "}, follow=True)
    assert "Write something first." in empty.content.decode()


def test_contact_and_customer_pages(client, tenant, admin):
    northwind = f.customer(tenant, "Northwind")
    jane = f.contact(tenant, "jane@northwind.test", "Jane Doe", northwind)
    t = f.ticket(tenant, "Jane's problem", requester=jane)
    f.message(t, kind=MessageKind.OUTBOUND, text="We fixed it", author=admin)
    client.force_login(admin)
    contact_page = client.get(reverse("tickets:contact", args=["acme", jane.pk])).content.decode()
    assert (
        "Jane&#x27;s problem" in contact_page
        and "We fixed it" in contact_page
        and "Northwind" in contact_page
    )
    customer_page = client.get(reverse("tickets:customer", args=["acme", northwind.pk])).content.decode()
    assert "jane@northwind.test" in customer_page and "Jane&#x27;s problem" in customer_page


def test_contact_and_customer_lists_search(client, tenant, admin):
    f.contact(tenant, "jane@northwind.test", "Jane Doe", f.customer(tenant, "Northwind"))
    f.contact(tenant, "bob@contoso.test", "Bob Smith")
    client.force_login(admin)
    page = client.get(reverse("tickets:contacts", args=["acme"]), {"q": "northwind"}).content.decode()
    assert "jane@northwind.test" in page and "bob@contoso.test" not in page
    page = client.get(reverse("tickets:customers", args=["acme"]), {"q": "north"}).content.decode()
    assert "Northwind" in page


def test_contact_edit_shows_errors_next_to_the_field(client, tenant, admin, other_tenant):
    jane = f.contact(tenant, "jane@northwind.test")
    theirs = f.customer(other_tenant, "Not yours")
    client.force_login(admin)
    response = client.post(
        reverse("tickets:contact_edit", args=["acme", jane.pk]), {"name": "Jane", "customer": theirs.pk}
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    jane.refresh_from_db()
    assert jane.customer is None


def test_links_in_plain_text_are_clickable_and_nothing_else_is(client, tenant, admin):
    t = f.ticket(
        tenant, body='See https://example.test/a?b=1&c=2. Also "http://x.test/q" and javascript:alert(1)'
    )
    client.force_login(admin)
    page = detail(client, t)
    assert (
        '<a href="https://example.test/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer nofollow">'
        in page
    )
    assert '<a href="http://x.test/q" target' in page
    assert 'href="javascript' not in page


def test_inbound_messages_link_their_processing_trace(client, tenant, admin):
    t = f.ticket(tenant)
    m = f.message(t, text="Follow-up", raw=b"Subject: x\r\n\r\nbody", threading_signal="in-reply-to")
    m.inbound.trace = [{"step": "parsed", "ms": 1.5}, {"step": "threaded", "note": "by In-Reply-To"}]
    m.inbound.save()
    client.force_login(admin)
    page = detail(client, t)
    assert "Threaded by In-Reply-To</summary>" in page
    url = reverse("tickets:message_trace", args=["acme", t.number, m.pk])
    assert f'hx-get="{url}"' in page
    trace = client.get(url).content.decode()
    assert "Processing trace" in trace and "by In-Reply-To" in trace and "1.5 ms" in trace


# Keys as the help dialog prints them.
KEY_LABELS = {"ArrowDown": "↓", "ArrowUp": "↑", "Escape": "Esc"}


def test_shortcut_help_lists_every_key_the_scripts_handle(client, tenant, agent):
    """The `?` dialog must not drift from js/tickets.js and js/composer.js: every key they act on is listed."""
    from django.conf import settings

    static = settings.BASE_DIR / "static" / "js"
    scripts = "".join((static / name).read_text() for name in ("tickets.js", "composer.js"))
    handled = set(re.findall(r'ev\.key === "([^"]+)"', scripts)) | set(
        re.findall(r'case "([^"]+)":', scripts)
    )
    t = f.ticket(tenant)
    client.force_login(agent)
    page = detail(client, t)
    handled |= set(re.findall(r'data-composer-tab="\w+" data-key="(\w)"', page))  # r, a, f, n
    assert {
        "j",
        "k",
        "x",
        "o",
        "Enter",
        "s",
        "u",
        "/",
        "g",
        "i",
        "?",
        "Escape",
        "r",
        "a",
        "f",
        "n",
    } <= handled
    dialog = re.search(r'<dialog id="shortcuts".*?</dialog>', page, re.S).group(0)
    listed = set(re.findall(r"<kbd>([^<]+)</kbd>", dialog))
    missing = {KEY_LABELS.get(key, key) for key in handled} - listed
    assert not missing, f"keys handled but not in the shortcuts dialog: {sorted(missing)}"
    if re.search(r"ev\.ctrlKey \|\| ev\.metaKey\) && \w+\.value\.trim\(\)", scripts):  # Ctrl+Enter sends
        assert re.search(r"<kbd>Ctrl</kbd> <kbd>Enter</kbd></dt><dd>Send the reply, add the note", dialog)
