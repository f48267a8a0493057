"""Issue #6, first "done when": the whole story in Chromium on real servers (Dovecot, Postfix, SeaweedFS,
PostgreSQL). An admin connects an IMAP+SMTP mailbox and tests it; a customer's mail becomes a ticket that
appears in the agent's list without a reload; the agent answers with a canned answer and a file and sets the
ticket pending; the customer receives it; their answer reopens the ticket and brings it to the top; the agent
merges a duplicate into it; search finds it by a word of the body. Each step ends with an assertion on the
page and a screenshot (test-artifacts/screenshots/)."""

from __future__ import annotations

import email
import email.policy
import re
import uuid

import pytest
from playwright.sync_api import expect

from accounts.access import tenant_reverse
from mailboxes import polling
from mailboxes.models import ConnectionTest, Health, Mailbox, OutboundEmail, OutboundKind
from tests.inbound.conftest import build_mail
from tickets.models import Message, MessageKind, Status, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Fresh addresses per run: the rig's Dovecot lives for the whole session and other tests use its users.
SUPPORT = f"help-{uuid.uuid4().hex[:8]}@acme.test"
CUSTOMER = f"dana-{uuid.uuid4().hex[:8]}@customer.test"
BODY_WORD = f"quokka{uuid.uuid4().hex[:6]}"  # only in the first mail's body: what search must find
PAYLOAD = b"%PDF-1.4\n" + bytes(range(256)) * 40


def poll(mailbox: Mailbox) -> polling.PollResult:
    """One run of the real poller (what the poll_mailbox task does), in this process."""
    result = polling.poll(mailbox.pk)
    assert result.leased and not result.error, result
    return result


def rows(page):
    return page.locator("[data-row]")


def test_agent_journey_from_connecting_a_mailbox_to_search(
    page, sign_in, live_server, tenant, admin, agent, dovecot, postfix, dns, rig_ca, private_ok, s3_storage,
    screenshot,
):  # fmt: skip
    password = dovecot.add_user(SUPPORT)
    dovecot.add_user(CUSTOMER)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.set_default_timeout(30_000)
    url = live_server.url

    # 1. The admin connects the mailbox by IMAP (Dovecot) and SMTP (Postfix submission) and tests it.
    sign_in(admin)
    page.goto(url + tenant_reverse(tenant, "mailboxes:manual"))
    page.fill("#id_email", SUPPORT)
    expect(page.get_by_text("No settings found for acme.test")).to_be_visible()
    page.fill("#id_name", "Acme Support")
    page.fill("#id_imap_host", "127.0.0.1")
    page.fill("#id_imap_port", str(dovecot.imaps_port))
    page.select_option("#id_imap_security", "ssl")
    page.fill("#id_imap_password", password)
    page.fill("#id_smtp_host", "127.0.0.1")
    page.fill("#id_smtp_port", str(postfix.submission_port))
    page.select_option("#id_smtp_security", "starttls")
    page.check("#id_smtp_same_credentials")
    page.click("text=Add and test the connection")
    expect(page.get_by_text("Everything works.")).to_be_visible()
    mailbox = Mailbox.objects.get(tenant=tenant)
    assert mailbox.email == SUPPORT and mailbox.health == Health.CONNECTED
    with page.expect_response(lambda r: r.url.endswith("/test/") and r.request.method == "POST"):
        page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-panel")).to_contain_text("Everything works.")
    expect(page.locator("#test-panel")).to_contain_text(f"Sent to {SUPPORT}")
    assert ConnectionTest.objects.filter(mailbox=mailbox, status="passed").count() == 2
    test_mails = list(OutboundEmail.objects.filter(mailbox=mailbox, kind=OutboundKind.TEST))
    assert len(test_mails) == 2 and all(m.status == "sent" for m in test_mails)
    for sent in test_mails:  # through Postfix and LMTP into the support mailbox itself
        dovecot.wait_for_messages(SUPPORT, match=lambda raw, sent=sent: sent.message_id.encode() in raw)
    screenshot(page, "1-mailbox-tested")

    # The admin prepares a canned answer in the settings.
    page.goto(url + tenant_reverse(tenant, "ticket_settings:canned_new"))
    page.fill("#id_key", "printer-fixed")
    page.fill("#id_title", "Printer fixed")
    page.fill(
        "#id_body",
        "Hello {{ contact.first_name }},\n\nwe replaced the fuser unit; your printer prints again. "
        "The service report is attached.",
    )
    page.get_by_role("button", name="Create answer").click()
    expect(page.get_by_text("Printer fixed").first).to_be_visible()
    screenshot(page, "1-canned-answer")

    # 2. A customer writes; the poller makes a ticket that appears in the agent's open list without a reload.
    page.context.clear_cookies()
    sign_in(agent)
    page.goto(url + tenant_reverse(tenant, "tickets:list", "open"))
    expect(page.get_by_role("heading", name="All open")).to_be_visible()
    expect(rows(page)).to_have_count(0)
    page.evaluate("window.__notReloaded = true")
    original_id = f"<printer-{uuid.uuid4().hex[:8]}@customer.test>"
    dovecot.append(
        SUPPORT,
        build_mail(
            sender=f"Dana Customer <{CUSTOMER}>",
            to=SUPPORT,
            subject="Printer makes a grinding noise",
            body=f"Hello, our office printer grinds and jams. It sits next to the {BODY_WORD} poster.",
            message_id=original_id,
        ),
    )
    result = poll(mailbox)
    assert result.new_tickets == 1, result
    ticket = Ticket.objects.get(tenant=tenant)
    row = page.locator(f"#row-{ticket.pk}")
    expect(row).to_contain_text("Printer makes a grinding noise")
    expect(rows(page)).to_have_count(1)
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "2-ticket-arrived-live")

    # 3. The agent opens it, inserts the canned answer, attaches a file and sends it, setting it pending.
    row.get_by_role("link").first.click()
    expect(page).to_have_url(f"{url}/acme/tickets/{ticket.number}/")
    expect(page.locator(".thread")).to_contain_text("grinds and jams")
    page.locator("#canned-q").fill("printer")
    page.locator("[data-canned-insert]", has_text="Printer fixed").click()
    body = page.locator("[data-composer-body]")
    expect(body).to_have_value(re.compile(r"^Hello Dana,\s+we replaced the fuser unit"))
    page.locator("input[type=file][name=files]").set_input_files(
        files=[{"name": "service-report.pdf", "mimeType": "application/pdf", "buffer": PAYLOAD}]
    )
    expect(page.locator("[data-file-names]")).to_have_text("service-report.pdf")
    screenshot(page, "3-composer")
    page.get_by_role("button", name="Send and set pending").click()
    expect(page.get_by_text("Reply sent; the ticket is pending.")).to_be_visible()
    expect(page.locator("#ticket-fields select[name=status]")).to_have_value(Status.PENDING)
    sent = page.locator("article.msg-outbound")
    expect(sent).to_contain_text("Agnes Agent replied")
    expect(sent.locator(".attachments")).to_contain_text("service-report.pdf")
    # Our reply has an HTML part, shown like every HTML mail: in the sandboxed frame.
    expect(sent.frame_locator("iframe.msg-frame").locator("body")).to_contain_text(
        "we replaced the fuser unit"
    )
    screenshot(page, "3-reply-sent")

    # 4. The customer receives it in their own mailbox (Postfix -> LMTP -> Dovecot), with the file.
    reply = Message.objects.get(ticket=ticket, kind=MessageKind.OUTBOUND)
    outbound = OutboundEmail.objects.get(ticket_message=reply)
    assert outbound.status == "sent", (outbound.error_message, outbound.smtp_text)
    mail = dovecot.wait_for_messages(CUSTOMER, match=lambda m: outbound.message_id.encode() in m, timeout=30)
    received = email.message_from_bytes(mail[0], policy=email.policy.default)
    assert received["In-Reply-To"] == original_id
    assert received["Subject"].startswith("Re: Printer makes a grinding noise")
    assert "Hello Dana," in received.get_body(("plain",)).get_content()
    (attachment,) = list(received.iter_attachments())
    assert attachment.get_filename() == "service-report.pdf" and attachment.get_content() == PAYLOAD
    page.reload()
    expect(page.locator("article.msg-outbound .delivery")).to_have_text("Sent")
    screenshot(page, "4-delivered")

    # Meanwhile the customer opens a second ticket about the same thing (the duplicate): it sorts on top.
    page.goto(url + tenant_reverse(tenant, "tickets:list", "open"))
    page.evaluate("window.__notReloaded = true")
    dovecot.append(
        SUPPORT,
        build_mail(
            sender=f"Dana Customer <{CUSTOMER}>",
            to=SUPPORT,
            subject="Printer still noisy?",
            body="Sorry, did you get my mail about the printer noise?",
        ),
    )
    assert poll(mailbox).new_tickets == 1
    duplicate = Ticket.objects.get(tenant=tenant, title="Printer still noisy?")
    expect(rows(page)).to_have_count(2)
    expect(rows(page).first).to_have_id(f"row-{duplicate.pk}")
    expect(page.locator(f"#row-{ticket.pk} .c-status")).to_have_text("Pending")
    screenshot(page, "4-duplicate-on-top")

    # 5. The customer answers the reply; the poller threads it: the ticket reopens and moves to the top.
    dovecot.append(
        SUPPORT,
        build_mail(
            sender=f"Dana Customer <{CUSTOMER}>",
            to=SUPPORT,
            subject=f"Re: {received['Subject']}",
            in_reply_to=str(received["Message-ID"]),
            references=f"{original_id} {received['Message-ID']}",
            body="It prints, but it still grinds a little.",
        ),
    )
    assert poll(mailbox).replies == 1
    expect(rows(page).first).to_have_id(f"row-{ticket.pk}")
    expect(page.locator(f"#row-{ticket.pk} .c-status")).to_have_text("Open")
    assert page.evaluate("window.__notReloaded") is True
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN
    screenshot(page, "5-reopened-on-top")

    # 6. The agent merges the duplicate into the ticket.
    page.locator(f"#row-{duplicate.pk}").get_by_role("link").first.click()
    expect(page).to_have_url(f"{url}/acme/tickets/{duplicate.number}/")
    page.locator(".ticket-actions summary", has_text="Merge").click()
    merge = page.locator(f"form[action$='/tickets/{duplicate.number}/merge/']")
    merge.locator("input[name=target]").fill(str(ticket.number))
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    merge.get_by_role("button", name="Merge").click()
    expect(page).to_have_url(f"{url}/acme/tickets/{ticket.number}/")
    expect(page.get_by_text(f"#{duplicate.number} was merged into this ticket.")).to_be_visible()
    expect(page.locator(".thread")).to_contain_text("did you get my mail about the printer noise?")
    assert len(dialogs) == 1 and dialogs[0].startswith(f"Merge #{duplicate.number} into")  # asked once
    duplicate.refresh_from_db()
    assert duplicate.merged_into_id == ticket.pk and duplicate.status == Status.CLOSED
    expect(
        page.locator("article.msg-outbound").frame_locator("iframe.msg-frame").locator("body")
    ).to_contain_text("we replaced the fuser unit")
    screenshot(page, "6-merged")

    # 7. Search finds the ticket by a word that only its first mail's body contains.
    page.goto(url + tenant_reverse(tenant, "tickets:list", "open"))
    page.locator("[data-search-input]").fill(BODY_WORD)
    page.locator("[data-search-input]").press("Enter")
    expect(page).to_have_url(re.compile(rf"/acme/views/all/\?q={BODY_WORD}$"))
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_have_id(f"row-{ticket.pk}")
    expect(rows(page).first).to_contain_text("Printer makes a grinding noise")
    screenshot(page, "7-search")
