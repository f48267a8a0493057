"""The email log and the template editor in Chromium: what an admin sees, and the live preview as they type."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect

from mailboxes.models import OutboundEmail

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sign_in(live_server, page):
    def sign(user):
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        page.context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}]
        )
        page.set_viewport_size({"width": 1440, "height": 900})
        return page

    return sign


def test_email_log_lists_mail_and_explains_a_failure(
    sign_in, live_server, tenant, admin, mailbox, ticket, screenshot
):
    OutboundEmail.objects.create(
        tenant=tenant, mailbox=mailbox, kind="reply", ticket=ticket, from_addr="Acme Support <support@acme.test>",
        to=["Dana Customer <dana@customer.test>"], subject="Re: Printer does not print", message_id="<a@acme.test>",
        status="failed", attempts=1, smtp_code=550, smtp_text="5.1.1 User unknown",
        error_message="The address dana@customer.test does not exist (the server does not know it).",
        error_advice="Check the address for typos, or ask the person for their current address.",
    )  # fmt: skip
    OutboundEmail.objects.create(
        tenant=tenant, mailbox=mailbox, kind="notification", from_addr="Acme Support <support@acme.test>",
        to=["agnes@acme.test"], subject="New reply on ACME-1001", message_id="<b@acme.test>", status="sent",
        smtp_code=250, smtp_text="2.0.0 Ok: queued as 4F2A",
    )  # fmt: skip
    page = sign_in(admin)
    page.goto(f"{live_server.url}/acme/settings/email-log/")
    expect(page.get_by_role("heading", name="Email log")).to_be_visible()
    expect(page.locator("tbody tr")).to_have_count(2)
    screenshot(page, "emaillog")
    page.get_by_role("link", name="Re: Printer does not print").click()
    expect(page.get_by_text("does not exist (the server does not know it)").first).to_be_visible()
    expect(page.get_by_role("button", name="Retry now")).to_be_visible()
    screenshot(page, "emaillog-detail")


def test_template_preview_follows_typing(sign_in, live_server, tenant, admin, screenshot):
    page = sign_in(admin)
    page.goto(f"{live_server.url}/acme/settings/templates/resolution/")
    preview = page.locator("#template-preview")
    expect(preview).to_contain_text("We marked your request ACME-1042 as solved")
    page.get_by_label("Subject").fill("All done, {{ contact.first_name }}!")
    expect(preview).to_contain_text("Subject: All done, Dana!")
    page.get_by_label("Body").fill("{% load static %}")
    expect(preview).to_contain_text("Only simple variables")
    screenshot(page, "template-edit")


def test_sla_page_adds_a_policy(sign_in, live_server, tenant, admin, support_queue, screenshot):
    page = sign_in(admin)
    page.goto(f"{live_server.url}/acme/settings/slas/")
    expect(page.get_by_text("No policy yet")).to_be_visible()
    page.get_by_label("Name").fill("Standard")
    page.get_by_label("First response within (minutes)").fill("60")
    page.get_by_role("button", name="Add policy").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody")).to_contain_text("60 min")
    screenshot(page, "sla")
