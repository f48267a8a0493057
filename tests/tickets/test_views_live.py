"""The list in a real browser: new tickets appear without a reload, and the keyboard drives it."""

import pytest
from playwright.sync_api import expect

from tests.tickets import factories as f

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_new_ticket_appears_in_the_open_list_without_reload(sign_in, live_server, tenant, agent, screenshot):
    f.ticket(tenant, "Already here")
    page = sign_in(agent)
    page.goto(f"{live_server.url}/acme/views/open/")
    expect(page.locator("[data-row]")).to_have_count(1)
    page.evaluate("window.__notReloaded = true")
    f.ticket(tenant, "Brand new question from a customer")
    expect(page.get_by_text("Brand new question from a customer")).to_be_visible(timeout=15000)
    expect(page.locator("[data-row]")).to_have_count(2)
    expect(page.locator(".nav-sub.is-active .count")).to_have_text("2")  # the counter followed
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "live")


def test_ticks_survive_a_live_refresh(sign_in, live_server, tenant, agent):
    first = f.ticket(tenant, "First")
    page = sign_in(agent)
    page.goto(f"{live_server.url}/acme/views/open/")
    page.locator(f"#row-{first.pk} [data-row-check]").check()
    expect(page.locator("[data-bulkbar]")).to_be_visible()
    f.ticket(tenant, "Second")
    expect(page.locator("[data-row]")).to_have_count(2, timeout=15000)
    expect(page.locator(f"#row-{first.pk} [data-row-check]")).to_be_checked()
    expect(page.locator("[data-bulk-count]")).to_have_text("1")


def test_keyboard_moves_opens_and_explains(sign_in, live_server, tenant, agent, screenshot):
    tickets = f.many_tickets(tenant, 3)
    page = sign_in(agent)
    page.goto(f"{live_server.url}/acme/views/open/")
    expect(page.locator("[data-row].is-cursor")).to_have_id(f"row-{tickets[2].pk}")
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(page.locator("[data-row].is-cursor")).to_have_id(f"row-{tickets[0].pk}")
    page.keyboard.press("k")
    page.keyboard.press("x")
    expect(page.locator("[data-bulk-count]")).to_have_text("1")
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    for action in ("Reply all", "Forward", "Write an internal note", "Solve", "Go to the inbox"):
        expect(dialog.get_by_text(action, exact=True)).to_be_visible()
    screenshot(page, "shortcuts")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_hidden()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/acme/tickets/{tickets[1].number}/")
    # r, a, f, n open the composer in that mode (Esc leaves the field it focused, so keys work again).
    tab, kind = page.locator(".composer-tab.is-active"), page.locator("[data-composer-kind]")
    for key, label, mode, focused in [
        ("a", "Reply all", "reply_all", "[data-composer-body]"),
        ("f", "Forward", "forward", "[data-composer-to]"),
        ("r", "Reply", "reply", "[data-composer-body]"),
    ]:
        page.keyboard.press(key)
        expect(tab).to_contain_text(label)
        expect(kind).to_have_value(mode)
        expect(page.locator('[data-composer-panel="reply"]')).to_be_visible()
        expect(page.locator(focused)).to_be_focused()
        page.keyboard.press("Escape")
    expect(page).to_have_url(
        f"{live_server.url}/acme/tickets/{tickets[1].number}/"
    )  # Esc only left the field
    page.keyboard.press("n")
    expect(page.locator('[data-composer-panel="reply"]')).to_be_hidden()
    expect(tab).to_contain_text("Note")
    expect(page.locator("[data-note-input]")).to_be_focused()
    page.keyboard.type("Checked the logs")
    page.keyboard.press("Control+Enter")
    expect(page.locator(".msg-note")).to_contain_text("Checked the logs")
    page.keyboard.press("s")
    expect(page.locator(".saved")).to_have_text("Saved")
    tickets[1].refresh_from_db()
    assert tickets[1].status == "solved"
    page.keyboard.press("u")
    expect(page).to_have_url(f"{live_server.url}/acme/views/open/")


def test_filter_menu_combines_choices_in_the_url(sign_in, live_server, tenant, admin, agent, screenshot):
    f.demo_inbox(tenant, [admin, agent], n=12, read_by=[admin])
    page = sign_in(admin)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/acme/views/all/")
    page.keyboard.press("f")
    panel = page.locator(".filter-panel")
    expect(panel).to_be_visible()
    panel.get_by_label("Pending").check()
    panel.get_by_label("Open").check()
    panel.get_by_label("Agnes Agent").check()
    screenshot(page, "filter-menu")
    panel.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(
        f"{live_server.url}/acme/views/all/?status=open&status=pending&assignee={agent.pk}"
    )
    expect(page.locator(".filter-chip")).to_have_count(3)
    for row in page.locator(".c-status").all()[1:]:
        assert row.inner_text() in ("Open", "Pending")
    screenshot(page, "filtered")


def test_sla_chips_show_what_is_due_and_turn_red_when_overdue(
    sign_in, live_server, tenant, admin, agent, screenshot
):
    from datetime import timedelta

    from django.utils import timezone

    from tickets.models import SlaPolicy

    SlaPolicy.objects.create(
        tenant=tenant,
        name="Standard",
        first_response_minutes=8 * 60,
        resolution_minutes=3 * 24 * 60,
        business_hours_only=False,
    )
    f.demo_inbox(tenant, [admin, agent], n=12, read_by=[admin])
    soon = f.ticket(tenant, "Payment page shows an error", at=timezone.now() - timedelta(hours=7, minutes=50))
    page = sign_in(admin)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.clock.install()  # the chips follow the clock while the page stays open
    page.goto(f"{live_server.url}/acme/views/all/")
    chip = page.locator(f"#row-{soon.pk} .sla")
    expect(chip).to_have_text("First response due in 9m")
    expect(chip).to_have_class("sla sla-soon")
    expect(page.locator(".sla-over").first).to_contain_text("overdue")
    screenshot(page, "sla")
    page.clock.fast_forward("00:12:00")
    expect(chip).to_have_text("First response overdue 2m")
    expect(chip).to_have_class("sla sla-over")
