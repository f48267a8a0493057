"""Who may reach a ticket, its messages and files: outsiders and agents without access get 404, roles get 403."""

import pytest
from django.urls import reverse

from accounts.models import Membership, Role
from tests.conftest import make_member
from tests.tickets import factories as f
from tickets.models import Message, MessageKind, Ticket

pytestmark = pytest.mark.django_db

RAW = b"From: jane@example.test\r\nTo: support@acme.test\r\nSubject: Hello\r\n\r\nRaw body here\r\n"


@pytest.fixture
def thread(tenant):
    """A ticket with an HTML message, an inline image, a PDF attachment and a stored original."""
    t = f.ticket(tenant, "Secret plans", body=None, html='<p>Hi <img src="cid:logo@x"></p>')
    m = t.messages.get()
    f.attachment(m, "logo.png", f.PNG, "image/png", content_id="<logo@x>", inline=True)
    f.attachment(m, "plans.pdf")
    m.inbound = f.message(t, raw=RAW, text="second").inbound
    m.save()
    return t


def urls(slug: str, t: Ticket) -> dict[str, tuple[str, str]]:
    """Every URL that shows or changes something of ticket `t`, under tenant `slug`: name -> (method, url)."""
    m = t.messages.order_by("id").first()
    png, pdf = m.attachments.order_by("id")
    rev = lambda name, *args: reverse(f"tickets:{name}", args=[slug, *args])  # noqa: E731
    return {
        "detail": ("get", rev("detail", t.number)),
        "history": ("get", rev("detail", t.number) + "?tab=history"),
        "body": ("get", rev("message_body", t.number, m.pk)),
        "body-images": ("get", rev("message_body", t.number, m.pk) + "?images=1"),
        "original": ("get", rev("message_original", t.number, m.pk)),
        "attachment": ("get", rev("attachment", pdf.pk)),
        "inline": ("get", rev("inline_image", png.pk)),
        "fields": ("post", rev("fields", t.number)),
        "title": ("post", rev("title", t.number)),
        "tag": ("post", rev("new_tag", t.number)),
        "note": ("post", rev("note", t.number)),
        "unread": ("post", rev("unread", t.number)),
        "merge": ("post", rev("merge", t.number)),
        "split": ("post", rev("split", t.number, m.pk)),
        "contact": ("get", rev("contact", t.requester_id)),
        "contact-edit": ("post", rev("contact_edit", t.requester_id)),
    }


def call(client, method: str, url: str):
    return client.get(url) if method == "get" else client.post(url, {"title": "x", "body": "x", "name": "x"})


def test_outsider_gets_404_on_every_ticket_url(client, thread, outsider):
    client.force_login(outsider)
    for name, (method, url) in urls("acme", thread).items():
        assert call(client, method, url).status_code == 404, name


def test_outsider_gets_404_when_asking_their_own_tenant_for_our_objects(
    client, thread, outsider, other_tenant
):
    """Ids and numbers of another tenant's rows lead nowhere, even under the outsider's own workspace."""
    client.force_login(outsider)
    for name, (method, url) in urls("globex", thread).items():
        assert call(client, method, url).status_code == 404, name
    assert Message.objects.filter(ticket=thread).count() == 2  # no note was added anywhere


def test_anonymous_visitor_is_sent_to_login(client, thread):
    response = client.get(urls("acme", thread)["attachment"][1])
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def _restricted(tenant, agent, thread, *, queue=False, mailbox=False):
    admin_membership = Membership.objects.filter(tenant=tenant, role__in=[Role.OWNER, Role.ADMIN]).first()
    if queue:
        thread.queue = f.queue(
            tenant, "VIP", restricted=True, members=[admin_membership] if admin_membership else []
        )
    if mailbox:
        thread.mailbox = f.mailbox(tenant, "EXE", members=[admin_membership] if admin_membership else [])
    thread.save()


@pytest.mark.parametrize("restriction", ["queue", "mailbox"])
def test_agent_without_access_gets_404_on_tickets_files_and_images(
    client, tenant, admin, agent, thread, restriction
):
    _restricted(tenant, agent, thread, **{restriction: True})
    client.force_login(agent)
    for name, (method, url) in urls("acme", thread).items():
        if name.startswith("contact"):
            continue  # contacts are shared by the whole workspace; their tickets are filtered (below)
        assert call(client, method, url).status_code == 404, name
    page = client.get(reverse("tickets:contact", args=["acme", thread.requester_id]))
    assert thread.title not in page.content.decode()
    assert thread.title not in client.get(reverse("tickets:list", args=["acme", "all"])).content.decode()


@pytest.mark.parametrize("restriction", ["queue", "mailbox"])
def test_member_of_restricted_queue_or_mailbox_sees_its_tickets(
    client, tenant, admin, agent, thread, restriction
):
    _restricted(tenant, agent, thread, **{restriction: True})
    membership = Membership.objects.get(tenant=tenant, user=agent)
    if restriction == "queue":
        thread.queue.members.add(membership)
    else:
        thread.mailbox.visible_to.add(membership)
    client.force_login(agent)
    assert client.get(urls("acme", thread)["detail"][1]).status_code == 200
    assert client.get(urls("acme", thread)["attachment"][1]).status_code == 200


def test_view_original_is_for_admins_only(client, thread, admin, agent):
    url = urls("acme", thread)["original"][1]
    client.force_login(agent)
    assert client.get(url).status_code == 403
    client.force_login(admin)
    response = client.get(url)
    assert response.status_code == 200
    assert b"Raw body here" in b"".join(response.streaming_content)
    assert response["Content-Type"].startswith("text/plain")
    assert response["X-Content-Type-Options"] == "nosniff"


def test_view_original_without_stored_source_is_404(client, tenant, admin):
    t = f.ticket(tenant)
    client.force_login(admin)
    assert (
        client.get(
            reverse("tickets:message_original", args=["acme", t.number, t.messages.get().pk])
        ).status_code
        == 404
    )


def test_attachment_downloads_as_attachment_with_nosniff(client, thread, agent):
    client.force_login(agent)
    response = client.get(urls("acme", thread)["attachment"][1])
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert 'filename="plans.pdf"' in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert b"".join(response.streaming_content) == b"%PDF-1.4 fake"


def test_html_and_svg_attachments_are_served_as_opaque_bytes(client, tenant, agent):
    t = f.ticket(tenant)
    m = t.messages.get()
    html = f.attachment(m, "page.html", b"<script>alert(1)</script>", "text/html")
    svg = f.attachment(
        m, "logo.svg", b"<svg onload='alert(1)'/>", "image/svg+xml", content_id="svg@x", inline=True
    )
    client.force_login(agent)
    for item in (html, svg):
        response = client.get(reverse("tickets:attachment", args=["acme", item.pk]))
        assert response["Content-Type"] == "application/octet-stream"
        assert response["Content-Disposition"].startswith("attachment;")
    # An SVG is never an inline image (it can carry script).
    assert client.get(reverse("tickets:inline_image", args=["acme", svg.pk])).status_code == 404


def test_hostile_filename_cannot_break_the_header(client, tenant, agent):
    t = f.ticket(tenant)
    item = f.attachment(t.messages.get(), 'a"\r\nSet-Cookie: x=1\r\n.pdf')
    client.force_login(agent)
    response = client.get(reverse("tickets:attachment", args=["acme", item.pk]))
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert "\n" not in response["Content-Disposition"]


def test_inline_image_is_served_inline_for_members(client, thread, agent):
    client.force_login(agent)
    response = client.get(urls("acme", thread)["inline"][1])
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == "inline"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_message_body_has_its_own_strict_csp(client, thread, agent):
    client.force_login(agent)
    response = client.get(urls("acme", thread)["body"][1])
    csp = response["Content-Security-Policy"]
    assert csp.startswith("default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'")
    assert "script-src" not in csp and "http:" not in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    # The cid: image points at the authorised inline endpoint.
    png = thread.messages.order_by("id").first().attachments.get(filename="logo.png")
    assert reverse("tickets:inline_image", args=["acme", png.pk]) in response.content.decode()
    shown = client.get(urls("acme", thread)["body-images"][1])
    assert "img-src 'self' data: https: http:;" in shown["Content-Security-Policy"]


def test_light_agent_reads_and_writes_notes_but_changes_nothing(client, tenant, thread):
    leo = make_member(tenant, "leo@acme.test", Role.LIGHT_AGENT, "Leo Light")
    client.force_login(leo)
    all_urls = urls("acme", thread)
    for name in ("detail", "body", "attachment", "inline"):
        assert client.get(all_urls[name][1]).status_code == 200, name
    for name in ("fields", "title", "tag", "merge", "split", "contact-edit"):
        assert call(client, "post", all_urls[name][1]).status_code == 403, name
    assert (
        client.post(
            reverse("tickets:bulk", args=["acme"]),
            {"action": "status", "ids": [thread.pk], "status": "solved"},
        ).status_code
        == 403
    )
    response = client.post(all_urls["note"][1], {"body": "Looks like a billing issue"})
    assert response.status_code == 302
    note = Message.objects.get(ticket=thread, kind=MessageKind.NOTE)
    assert note.author == leo and note.text == "Looks like a billing issue"
    page = client.get(all_urls["detail"][1]).content.decode()
    assert 'name="title"' not in page and "tickets/1001/fields/" not in page
    thread.refresh_from_db()
    assert thread.status == "new" and thread.title == "Secret plans"


def test_bulk_actions_ignore_tickets_the_agent_cannot_see(client, tenant, admin, agent):
    visible = f.ticket(tenant, "Visible")
    hidden = f.ticket(tenant, "Hidden", queue=f.queue(tenant, "VIP", restricted=True))
    client.force_login(agent)
    client.post(
        reverse("tickets:bulk", args=["acme"]),
        {"action": "status", "status": "solved", "ids": [visible.pk, hidden.pk]},
    )
    visible.refresh_from_db()
    hidden.refresh_from_db()
    assert visible.status == "solved"
    assert hidden.status == "new"


def test_merging_into_a_ticket_the_agent_cannot_see_is_refused(client, tenant, agent):
    mine = f.ticket(tenant, "Mine")
    hidden = f.ticket(tenant, "Hidden", queue=f.queue(tenant, "VIP", restricted=True))
    client.force_login(agent)
    client.post(reverse("tickets:merge", args=["acme", mine.number]), {"target": str(hidden.number)})
    mine.refresh_from_db()
    assert mine.merged_into is None
    assert hidden.messages.count() == 1


@pytest.mark.parametrize("member_of", [False, True])
def test_visibility_is_the_same_with_and_without_the_requests_lists(tenant, agent, thread, member_of):
    """Ticket.objects.visible_to filters by subqueries until the request has loaded its queue and mailbox lists,
    then by their ids: both must select the same tickets (restricted queue, members-only mailbox, neither)."""
    from tickets.access import visible_mailbox_list, visible_queue_list

    hidden_queue = f.ticket(tenant, "In a restricted queue")
    hidden_box = f.ticket(tenant, "Through a members-only mailbox")
    _restricted(tenant, agent, hidden_queue, queue=True)
    _restricted(tenant, agent, hidden_box, mailbox=True)
    if member_of:
        membership = Membership.objects.get(tenant=tenant, user=agent)
        hidden_queue.queue.members.add(membership)
        hidden_box.mailbox.visible_to.add(membership)

    def visible() -> set[str]:
        return set(Ticket.objects.visible_to(membership).values_list("title", flat=True))

    membership = Membership.objects.select_related("tenant").get(tenant=tenant, user=agent)
    by_subqueries = visible()
    visible_queue_list(membership), visible_mailbox_list(membership)
    assert visible() == by_subqueries
    expected = {"In a restricted queue", "Through a members-only mailbox"} if member_of else set()
    assert by_subqueries & {"In a restricted queue", "Through a members-only mailbox"} == expected
    assert thread.title in by_subqueries
