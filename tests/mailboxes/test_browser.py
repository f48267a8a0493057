"""The mailbox settings in headless Chromium: the Microsoft and Google connect flows against the rig's
authorization server, manual setup with autodiscovery as the admin types, and screenshots of every page
(test-artifacts/screenshots/) for a human look."""

import re

import pytest
from playwright.sync_api import expect

from accounts.access import tenant_reverse
from mailboxes.models import Health, Mailbox, OutboundEmail
from tests.conftest import PASSWORD
from tests.mailboxes.conftest import SUPPORT, make_mailbox
from tests.rig.browser import screenshot_path

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def csp_violations(page) -> list[str]:
    found: list[str] = []
    page.on(
        "console",
        lambda msg: (
            found.append(f"{msg.text} @ {msg.location}") if "Content Security Policy" in msg.text else None
        ),
    )
    return found


@pytest.fixture
def signed_in(page, live_server, admin):
    page.set_viewport_size({"width": 1360, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", admin.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/acme/"))
    return page


@pytest.fixture
def browser_oauth(settings, oauth_providers, oauth_server, live_server):
    settings.OAUTH_REDIRECT_URI = f"{live_server.url}/oauth/callback/"
    # As settings.py does for the real providers: the connect form's redirect goes to the provider.
    settings.SECURE_CSP = {
        **settings.SECURE_CSP,
        "form-action": [*settings.SECURE_CSP["form-action"], oauth_server.base_url],
    }
    return oauth_providers


def provider_sign_in(page, username: str) -> None:
    """The provider's login and consent pages (the rig's stand-in for Microsoft's and Google's)."""
    page.wait_for_selector("#username")
    page.fill("#username", username)
    page.fill("#password", username.split("@")[0] + "pw")
    page.click("#signin")
    page.click("input[name=allow]")


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_connect_flow_in_the_browser(
    signed_in, live_server, tenant, browser_oauth, dovecot, postfix, screenshot, csp_violations, provider
):
    page = signed_in
    page.goto(live_server.url + tenant_reverse(tenant, "mailboxes:list"))
    screenshot(page, "empty")
    page.goto(live_server.url + tenant_reverse(tenant, "mailboxes:add"))
    screenshot(page, "add")
    label = "Microsoft" if provider == "microsoft" else "Google"
    page.click(f"text=Connect with {label}")
    provider_sign_in(page, SUPPORT)

    page.wait_for_url(re.compile(r"/acme/settings/mailboxes/\d+/$"))
    page.wait_for_selector("text=Everything works.", timeout=20000)
    screenshot(page, "connected")
    mailbox = Mailbox.objects.get(tenant=tenant)
    assert (mailbox.email, mailbox.provider, mailbox.auth_method, mailbox.health) == (
        SUPPORT, provider, "oauth2", Health.CONNECTED,
    )  # fmt: skip
    assert f"{SUPPORT} is connected" in page.inner_text(".flashes")
    sent = OutboundEmail.objects.get(mailbox=mailbox, kind="test")
    dovecot.wait_for_messages(SUPPORT, match=lambda raw: sent.message_id.encode() in raw)
    assert csp_violations == []


def test_reconnect_in_the_browser_after_revocation(
    signed_in, live_server, tenant, browser_oauth, oauth_server, dovecot, postfix, screenshot
):
    from mailboxes import imap
    from mailboxes.errors import NeedsReconnect
    from tests.mailboxes.conftest import oauth_mailbox

    mailbox = oauth_mailbox(tenant, oauth_server, browser_oauth)
    oauth_server.revoke_all(SUPPORT)
    with pytest.raises(NeedsReconnect), imap.session(mailbox):
        pass

    page = signed_in
    page.goto(live_server.url + tenant_reverse(tenant, "tickets:inbox"))
    banner = page.locator(".banner-reconnect")
    assert f"{SUPPORT} needs to be reconnected" in banner.inner_text()
    screenshot(page, "banner")
    page.goto(live_server.url + tenant_reverse(tenant, "mailboxes:list"))
    screenshot(page, "list-needs-reconnect")
    banner.get_by_role("button", name="Reconnect").click()
    provider_sign_in(page, SUPPORT)
    page.wait_for_selector("text=Everything works.", timeout=20000)
    assert page.locator(".banner-reconnect").count() == 0
    mailbox.refresh_from_db()
    assert mailbox.health == Health.CONNECTED


def test_manual_setup_with_autodiscovery_in_the_browser(
    request,
    signed_in,
    live_server,
    tenant,
    dns,
    dovecot,
    smtp,
    rig_ca,
    private_ok,
    screenshot,
    csp_violations,
):
    page = signed_in
    page.goto(live_server.url + tenant_reverse(tenant, "mailboxes:manual"))
    page.locator("#id_email").press_sequentially("help@gtenant.test", delay=20)
    page.wait_for_selector("text=Connect with Google instead")
    assert page.input_value("#id_imap_host") == "imap.gmail.com"
    page.fill("#id_email", "")
    page.locator("#id_email").press_sequentially("help@example.test", delay=20)
    expect(page.locator("#id_imap_host")).to_have_value("imap.example.test")
    assert page.input_value("#id_smtp_port") == "465"
    # caret="initial": Playwright's default caret hiding leaves style="" on inputs, which htmx's settle step
    # would then copy into swapped content (a CSP report that real use never triggers).
    path = screenshot_path(request.config.rootpath, request.node.nodeid, "discovered")
    page.screenshot(path=str(path), full_page=True, caret="initial")

    page.fill("#id_email", SUPPORT)
    page.wait_for_selector("text=No settings found for acme.test")
    page.fill("#id_name", "Support")
    page.fill("#id_imap_host", "127.0.0.1")
    page.fill("#id_imap_port", str(dovecot.imaps_port))
    page.select_option("#id_imap_security", "ssl")
    page.fill("#id_imap_password", "supportpw")
    page.fill("#id_smtp_host", "127.0.0.1")
    page.fill("#id_smtp_port", str(smtp.starttls_port))
    page.select_option("#id_smtp_security", "starttls")
    screenshot(page, "filled")
    page.click("text=Add and test the connection")
    page.wait_for_selector("text=Everything works.", timeout=20000)
    screenshot(page, "detail")
    assert Mailbox.objects.get(tenant=tenant).health == Health.CONNECTED
    assert csp_violations == []


def test_pages_look_right(request, signed_in, live_server, tenant, imap_mailbox, screenshot, csp_violations):
    """Screenshots of the overview with several states, a failing test, the sections, defaults and delete."""
    from mailboxes import connection_test
    from mailboxes.models import ConnectionTest

    Mailbox.objects.filter(pk=imap_mailbox.pk).update(
        health=Health.CONNECTED, is_default=True, description="Customer questions"
    )
    make_mailbox(
        tenant, key="SALES", email="sales@acme.test", name="Sales", provider="google", auth_method="oauth2",
        health=Health.NEEDS_RECONNECT, last_error="Google no longer accepts the connection (invalid_grant).",
    )  # fmt: skip
    broken = make_mailbox(
        tenant, key="BILL", email="billing@acme.test", name="Billing", imap_port=imap_mailbox.imap_port,
        smtp_port=imap_mailbox.smtp_port, smtp_security="starttls", imap_password="wrong",
    )  # fmt: skip
    connection_test.run(ConnectionTest.objects.create(tenant=tenant, mailbox=broken))
    make_mailbox(
        tenant, key="OLD", email="old@acme.test", name="Old address", is_active=False, health=Health.DISABLED
    )

    page = signed_in
    page.goto(live_server.url + tenant_reverse(tenant, "mailboxes:list"))
    screenshot(page, "list")
    page.click("summary[aria-label='More actions for support@acme.test']")
    screenshot(page, "list-menu")
    page.goto(live_server.url + broken.get_absolute_url())
    screenshot(page, "detail-failed")
    for part in ("health", "connection", "visibility"):
        page.locator(f"#{part}").screenshot(
            path=str(screenshot_path(request.config.rootpath, request.node.nodeid, part))
        )
    page.goto(live_server.url + tenant_reverse(tenant, "mailboxes:email_settings"))
    screenshot(page, "email-defaults")
    page.goto(live_server.url + tenant_reverse(tenant, "mailboxes:delete", broken.pk))
    screenshot(page, "delete")
    page.goto(live_server.url + tenant_reverse(tenant, "mailboxes:copy", imap_mailbox.pk))
    screenshot(page, "copy")
    page.set_viewport_size({"width": 420, "height": 900})
    page.goto(live_server.url + tenant_reverse(tenant, "mailboxes:list"))
    screenshot(page, "list-mobile")
    assert csp_violations == []


def test_admin_sets_own_oauth_app_in_the_browser(signed_in, live_server, tenant, screenshot, csp_violations):
    from mailboxes.models import OAuthApp

    page = signed_in
    page.goto(live_server.url + tenant_reverse(tenant, "mailboxes:list"))
    page.click("text=OAuth apps")
    screenshot(page, "empty")
    page.fill("#id_google-client_id", "1234-acme.apps.googleusercontent.com")
    page.fill("#id_google-client_secret", "GOCSPX-acme-secret-0123456789")
    page.click("text=Save Google app")
    expect(page.locator("#google")).to_contain_text("Secret saved, ends in …6789")
    assert "GOCSPX-acme-secret-0123456789" not in page.content()
    assert page.input_value("#id_google-client_secret") == ""
    screenshot(page, "saved")
    assert OAuthApp.objects.get(tenant=tenant).client_id == "1234-acme.apps.googleusercontent.com"
    questions: list[str] = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.click("text=Remove your Google app")
    assert questions == [
        "Remove your Google app? Mailboxes that signed in through it will have to be reconnected."
    ]
    assert OAuthApp.objects.exists()  # dismissed: nothing removed
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Remove your Google app")
    expect(page.locator("#google")).not_to_contain_text("Secret saved")
    assert not OAuthApp.objects.exists()
    assert csp_violations == []
