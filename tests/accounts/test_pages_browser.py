"""The accounts pages in a real browser (headless Chromium): the flows work with the strict CSP on, and each
page is screenshotted under test-artifacts/screenshots/ for a human look."""

import re

import pytest
from django.core import mail

from accounts.access import tenant_reverse
from accounts.models import Membership, Role
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def csp_violations(page) -> list[str]:
    """Console messages about blocked inline scripts/styles; every test asserts the list stays empty."""
    found: list[str] = []
    page.on(
        "console",
        lambda msg: found.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    return found


def sign_in(page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_sign_up_fills_the_address_and_lands_in_the_inbox(live_server, page, screenshot, csp_violations, db):
    page.goto(f"{live_server.url}/signup/")
    page.fill("#id_workspace_name", "Zürich Bikes & Co")
    assert page.input_value("#id_slug") == "zurich-bikes-co"  # data-autofill-slug (static/js/app.js)
    page.fill("#id_name", "Zora Zed")
    page.fill("#id_email", "zora@bikes.example")
    page.fill("#id_password", "pedal-power-forever")
    screenshot(page, "signup")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/zurich-bikes-co/$"))
    assert "Welcome to Zürich Bikes & Co!" in page.inner_text(".flashes")
    screenshot(page, "inbox-empty")
    assert csp_violations == []


def test_sign_in_profile_and_members(
    live_server, page, screenshot, csp_violations, tenant, owner, admin, agent
):
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server.url}/accounts/login/")
    screenshot(page, "login")
    sign_in(page, live_server.url, "OLIVIA@acme.test")
    page.wait_for_url(re.compile(r"/acme/$"))

    page.goto(live_server.url + tenant_reverse(tenant, "accounts:profile"))
    page.fill("#id_phone", "+49 30 123456")
    page.fill("#id_signature", "Best regards,\n{{ agent.name }}\nAcme Support")
    page.click("text=Save profile")
    page.wait_for_selector(".flash-success")
    screenshot(page, "profile")
    owner.refresh_from_db()
    assert owner.phone == "+49 30 123456"

    page.goto(live_server.url + tenant_reverse(tenant, "accounts:members"))
    page.fill("#id_email", "nina@example.com")
    page.select_option("#id_role", Role.LIGHT_AGENT)
    page.click("text=Send invitation")
    page.wait_for_selector("text=Invitation sent to nina@example.com.")
    assert len(mail.outbox) == 1
    # Role change through the row's select and Save button.
    agent_row = page.locator("tr", has_text="agnes@acme.test")
    agent_row.locator("select[name=role]").select_option(Role.ADMIN)
    agent_row.locator("text=Save").click()
    page.wait_for_selector("text=Agnes Agent is now admin.")
    assert Membership.objects.get(user=agent, tenant=tenant).role == Role.ADMIN
    screenshot(page, "members")
    # Remove asks first (data-confirm); dismissing keeps the member.
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.locator("tr", has_text="adam@acme.test").locator("text=Remove").click()
    assert asked and asked[0].startswith("Remove Adam Admin from Acme Support?")
    assert Membership.objects.filter(user=admin, tenant=tenant).exists()
    page.goto(live_server.url + tenant_reverse(tenant, "accounts:password_change"))
    screenshot(page, "password-change")
    assert csp_violations == []


def test_invitation_accepted_in_the_browser(
    live_server, page, screenshot, csp_violations, tenant, owner, admin
):
    from accounts import invitations

    invitations.invite(tenant=tenant, email="nina@example.com", role=Role.AGENT, invited_by=admin)
    link = re.search(r"/invite/\S+/", mail.outbox[0].body).group(0)
    page.goto(live_server.url + link)
    screenshot(page, "invitation")
    page.fill("#id_name", "Nina New")
    page.fill("#id_password", "a-long-and-new-passphrase")
    page.click("text=Create account and join")
    page.wait_for_url(re.compile(r"/acme/$"))
    assert "Welcome to Acme Support!" in page.inner_text(".flashes")

    page.goto(live_server.url + link)
    assert "already used" in page.content()
    screenshot(page, "invitation-used")
    assert csp_violations == []


def test_lockout_and_workspace_picker(
    live_server, page, screenshot, csp_violations, tenant, other_tenant, agent
):
    Membership.objects.create(tenant=other_tenant, user=agent, role=Role.ADMIN)
    for _ in range(5):
        sign_in(page, live_server.url, agent.email, "wrong-password")
    assert "Too many failed sign-in attempts" in page.content()
    screenshot(page, "locked-out")

    page.context.clear_cookies()
    page.goto(f"{live_server.url}/accounts/password-reset/")
    screenshot(page, "password-reset")

    from axes.utils import reset

    reset(username=agent.email)
    sign_in(page, live_server.url, agent.email)
    page.wait_for_selector("text=Choose a workspace")
    screenshot(page, "workspaces")
    page.click("text=Globex")
    page.wait_for_url(re.compile(r"/globex/$"))
    page.click(".switcher summary")
    screenshot(page, "switcher")
    assert csp_violations == []


def test_invitation_for_another_address_then_expired(
    live_server, page, screenshot, csp_violations, tenant, admin, outsider
):
    from datetime import timedelta

    from django.utils import timezone

    from accounts import invitations
    from accounts.models import Invitation

    invitations.invite(tenant=tenant, email="nina@example.com", role=Role.AGENT, invited_by=admin)
    link = re.search(r"/invite/\S+/", mail.outbox[0].body).group(0)
    sign_in(page, live_server.url, outsider.email)
    page.wait_for_url(re.compile(r"/globex/$"))
    page.goto(live_server.url + link)
    assert "This invitation is for nina@example.com." in page.inner_text(".alert")
    screenshot(page, "invitation-wrong-user")
    page.click("text=Sign out and continue")
    page.wait_for_selector("text=Create your account")  # signed out, back on the invitation

    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    page.goto(live_server.url + link)
    assert "This invitation has expired" in page.content()
    screenshot(page, "invitation-expired")
    assert csp_violations == []
