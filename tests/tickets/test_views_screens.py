"""Screenshots of the agent workspace in Chromium, each ending in an assertion on the page."""

import pytest
from playwright.sync_api import expect

from tests.conftest import make_member
from tests.tickets import factories as f
from tickets.models import MessageKind

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_empty_inbox_invites_admin_to_connect_a_mailbox(sign_in, live_server, tenant, admin, screenshot):
    page = sign_in(admin)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/acme/")
    expect(page.get_by_role("heading", name="No tickets yet")).to_be_visible()
    expect(page.get_by_role("link", name="Connect your first mailbox")).to_be_visible()
    screenshot(page, "inbox-empty")


def test_inbox_with_thirty_tickets_shows_rows_counters_and_chips(
    sign_in, live_server, tenant, admin, agent, screenshot
):
    bob = make_member(tenant, "bob@acme.test", "agent", "Bob Builder")
    f.demo_inbox(tenant, [admin, agent, bob], n=30, read_by=[admin])
    page = sign_in(admin)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/acme/views/open/")
    expect(page.locator("[data-row]")).to_have_count(26)  # 30 minus the solved ones
    expect(page.locator(".nav-sub.is-active .count")).to_have_text("26")
    screenshot(page, "inbox-30")
    page.keyboard.press("j")
    page.keyboard.press("x")
    expect(page.locator("[data-bulkbar]")).to_be_visible()
    screenshot(page, "inbox-selected")


def test_ticket_view_shows_thread_kinds_and_side_panel(
    sign_in, live_server, tenant, admin, agent, screenshot
):
    box = f.mailbox(tenant, "SUP", name="Support")
    acme = f.customer(tenant, "Northwind Traders")
    jane = f.contact(tenant, "jane.cooper@northwind.test", "Jane Cooper", acme)
    t = f.ticket(
        tenant,
        "Invoice #4471 charged twice",
        requester=jane,
        mailbox=box,
        body=None,
        html=(
            "<p>Hi there,</p><p>our card was charged <b>twice</b> for invoice #4471 this morning "
            "(see the screenshot from our bank below).</p><p><img src='https://bank.example/track.gif' "
            "width='1' height='1'></p><blockquote>Your payment of $249.00 was received.</blockquote>"
            "<p>Could you refund one of them?</p><p>Thanks,<br>Jane</p>"
        ),
    )
    first = t.messages.get()
    f.attachment(first, "statement-march.pdf", b"%PDF-1.4 " + b"x" * 48000)
    f.message(
        t,
        kind=MessageKind.NOTE,
        text="Checked Stripe: two charges of $249, 3 minutes apart. Refunding one.",
        author=agent,
    )
    f.message(
        t,
        kind=MessageKind.OUTBOUND,
        author=agent,
        text="Hi Jane,\n\nsorry about that! I refunded the second charge; it shows on your statement within 5 days.\n\nAgnes",
        to=["jane.cooper@northwind.test"],
    )
    f.message(
        t,
        kind=MessageKind.AUTOMATIC,
        text="I am out of office until Monday.",
        subject="Automatic reply: Invoice #4471",
        from_name="Jane Cooper",
        from_addr="jane.cooper@northwind.test",
    )
    thanks = f.message(
        t, text="Perfect, thank you so much!", threading_signal="references", raw=b"Subject: x\r\n\r\nok"
    )
    thanks.inbound.trace = [{"step": "parse", "ms": 2.4}, {"step": "thread", "note": "references"}]
    thanks.inbound.save()
    f.ticket(tenant, "Add a second admin to our account", requester=jane, mailbox=box)
    page = sign_in(admin)
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.goto(f"{live_server.url}/acme/tickets/{t.number}/")
    expect(page.locator("[data-message]")).to_have_count(5)
    expect(page.get_by_text("Remote images are blocked")).to_be_visible()
    expect(page.get_by_text("Threaded by References")).to_be_visible()
    page.wait_for_load_state("networkidle")
    screenshot(page, "ticket")
    # The processing trace loads when opened.
    trace = page.get_by_role("heading", name="Processing trace")
    expect(trace).to_have_count(0)
    page.get_by_text("Threaded by References").click()
    expect(trace).to_be_visible()
    expect(page.locator(".trace-steps")).to_contain_text("2.4 ms")


def test_contact_page_lists_tickets_and_mail(sign_in, live_server, tenant, admin, agent, screenshot):
    f.demo_inbox(tenant, [admin, agent], n=12)
    from tickets.models import Contact

    jane = Contact.objects.get(email="jane.cooper@northwind.test")
    page = sign_in(admin)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/acme/contacts/{jane.pk}/")
    expect(page.get_by_role("heading", name="Jane Cooper")).to_be_visible()
    expect(page.locator("[data-row]")).to_have_count(2)
    screenshot(page, "contact")
    page.get_by_role("link", name="Northwind Traders").first.click()
    expect(page.get_by_role("heading", name="Northwind Traders")).to_be_visible()
    expect(page.locator(".people-list li")).to_have_count(2)
    screenshot(page, "customer")


def test_light_agent_sees_the_ticket_read_only_with_the_note_composer(
    sign_in, live_server, tenant, screenshot
):
    leo = make_member(tenant, "leo@acme.test", "light_agent", "Leo Light")
    t = f.ticket(tenant, "Where is my order?", mailbox=f.mailbox(tenant, "SUP"))
    page = sign_in(leo)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server.url}/acme/tickets/{t.number}/")
    expect(page.get_by_role("heading", name="Where is my order?")).to_be_visible()
    expect(page.locator("#tf-status")).to_have_count(0)
    expect(page.get_by_role("button", name="Add note")).to_be_visible()
    screenshot(page, "light-agent")
