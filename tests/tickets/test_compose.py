"""The ticket composer: reply / reply all / forward with status, field errors, the collision guard, canned
answers, attachment limits and previews; light agents only write notes, outsiders see nothing."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from mailboxes.models import OutboundEmail
from tests.conftest import make_member
from tests.tickets import factories as f
from tickets import threading
from tickets.models import CannedAnswer, Message, MessageKind, Status, TicketEvent

pytestmark = pytest.mark.django_db


def url(name, t, *extra):
    return reverse(f"tickets:{name}", args=["acme", t.number, *extra])


@pytest.fixture
def box(tenant):
    return f.mailbox(tenant, "SUP", email="support@acme.test", is_default=True)


@pytest.fixture
def t(tenant, box):
    requester = f.contact(tenant, "dana@customer.test", "Dana Customer")
    return f.ticket(tenant, "Printer on fire", requester=requester, mailbox=box)


def newest(t):
    return Message.objects.filter(ticket=t).order_by("-pk").first().pk


def post(client, t, *, htmx=False, **data):
    values = {"kind": "reply", "to": "dana@customer.test", "body": "We sent a technician.", "seen": newest(t)}
    values.update(data)
    return client.post(url("reply", t), values, headers={"HX-Request": "true"} if htmx else None)


def test_ticket_page_shows_the_composer_with_tabs_and_prefilled_recipient(client, t, agent, box):
    client.force_login(agent)
    page = client.get(url("detail", t)).content.decode()
    assert 'data-composer-tab="reply"' in page and 'data-composer-tab="forward"' in page
    assert 'data-composer-tab="note"' in page
    assert 'value="dana@customer.test"' in page
    assert re.search(rf'<option value="{box.pk}" selected>', page)
    assert "js/composer.js" in page


def test_reply_creates_outbound_message_and_outbox_row(client, t, agent):
    client.force_login(agent)
    response = post(client, t)
    assert response.status_code == 302
    message = Message.objects.get(ticket=t, kind=MessageKind.OUTBOUND)
    assert response["Location"].endswith(f"#m-{message.pk}")
    row = OutboundEmail.objects.get(ticket_message=message)
    assert row.to == ["dana@customer.test"]
    assert threading.subject_token(t) in row.subject and row.subject.startswith("Re: Printer on fire")
    assert message.author == agent
    page = client.get(response["Location"]).content.decode()
    assert "Reply sent." in page, re.findall(r'class="flash[^"]*"[^<]*', page)
    assert (
        f'<article class="msg msg-outbound" id="m-{message.pk}"' in page
    )  # in the thread (HTML in an iframe)


@pytest.mark.parametrize("then", [Status.PENDING, Status.SOLVED])
def test_send_and_set_status(client, t, agent, then):
    client.force_login(agent)
    assert post(client, t, then=then).status_code == 302
    t.refresh_from_db()
    assert t.status == then


def test_bad_address_shows_a_field_error_and_writes_nothing(client, t, agent):
    client.force_login(agent)
    response = post(client, t, cc="not an address")
    assert response.status_code == 400
    page = response.content.decode()
    assert re.search(r'id="id_cc-error">[^<]*is not a valid email address', page)
    assert "We sent a technician." in page  # the draft is kept
    assert not Message.objects.filter(ticket=t, kind=MessageKind.OUTBOUND).exists()
    assert not OutboundEmail.objects.exists()


def test_no_recipient_is_a_field_error(client, t, agent):
    client.force_login(agent)
    response = post(client, t, to="")
    assert response.status_code == 400 and "Add at least one recipient." in response.content.decode()
    assert not OutboundEmail.objects.exists()


def test_light_agent_sees_only_notes_and_gets_403_on_reply(client, t, light_agent):
    client.force_login(light_agent)
    page = client.get(url("detail", t)).content.decode()
    assert 'data-composer-tab="note"' in page and 'data-composer-tab="reply"' not in page
    assert post(client, t).status_code == 403
    assert client.post(url("reply_preview", t), {"body": "x"}).status_code == 403
    assert client.get(url("canned_search", t)).status_code == 403
    assert not OutboundEmail.objects.exists()


def test_outsider_gets_404(client, t, outsider):
    client.force_login(outsider)
    assert post(client, t).status_code == 404
    assert client.get(url("canned_search", t)).status_code == 404
    assert client.post(url("reply_preview", t), {"body": "x"}).status_code == 404


def test_collision_blocks_the_send_and_send_anyway_sends(client, t, agent):
    client.force_login(agent)
    seen = newest(t)
    f.message(t, text="Actually it is fixed now!")
    response = post(client, t, seen=seen, then=Status.SOLVED)
    assert response.status_code == 409
    page = response.content.decode()
    assert "A new message arrived since you opened this ticket" in page
    assert "Send anyway" in page and "Actually it is fixed now!" in page
    assert not OutboundEmail.objects.exists()
    response = post(client, t, seen=seen, then=Status.SOLVED, force="1")
    assert response.status_code == 302
    assert OutboundEmail.objects.count() == 1
    t.refresh_from_db()
    assert t.status == Status.SOLVED


def test_own_note_since_opening_is_no_collision(client, t, agent):
    client.force_login(agent)
    seen = newest(t)
    f.message(t, kind=MessageKind.NOTE, text="note", author=agent)
    assert post(client, t, seen=seen).status_code == 302


def test_forward_goes_to_the_third_party(client, t, agent):
    client.force_login(agent)
    assert post(client, t, kind="forward", to="vendor@example.test").status_code == 302
    row = OutboundEmail.objects.get()
    assert row.to == ["vendor@example.test"] and row.subject.startswith("Fwd: ")


def test_preview_shows_exactly_what_is_sent_escaped(client, t, agent):
    client.force_login(agent)
    response = client.post(
        url("reply_preview", t),
        {"kind": "reply", "to": "dana@customer.test", "body": "Try <b>this</b>.", "seen": newest(t)},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Try &lt;b&gt;this&lt;/b&gt;." in page and "<b>this</b>" not in page
    assert threading.subject_token(t) in page and "dana@customer.test" in page
    assert not OutboundEmail.objects.exists()


def test_canned_search_returns_only_visible_answers(client, tenant, t, agent):
    hidden_box = f.mailbox(tenant, "VIP", members=[])
    hidden_box.visibility = "members"
    hidden_box.save()
    CannedAnswer.objects.create(tenant=tenant, key="refund", title="Refund policy", body="Refunds")
    CannedAnswer.objects.create(tenant=tenant, key="vip", title="VIP refund", body="VIP", mailbox=hidden_box)
    other = f.mailbox(tenant, "OTH")
    CannedAnswer.objects.create(tenant=tenant, key="other", title="Other refund", body="x", mailbox=other)
    client.force_login(agent)
    page = client.get(url("canned_search", t), {"q": "refund"}).content.decode()
    assert "Refund policy" in page
    assert "VIP refund" not in page  # a mailbox the agent does not see
    assert "Other refund" not in page  # another mailbox's answer, not this ticket's
    page = client.get(url("canned_search", t), {"q": "nothing-like-it"}).content.decode()
    assert "No canned answers match." in page


def test_canned_insert_renders_variables_and_lists_files(client, tenant, t, agent):
    answer = CannedAnswer.objects.create(
        tenant=tenant, key="hi", title="Hello", body="Hi {{ contact.first_name }}, {{ agent.name }} here."
    )
    client.force_login(agent)
    data = client.get(url("canned_insert", t, answer.pk)).json()
    assert data == {"body": "Hi Dana, Agnes Agent here.", "files": []}


def test_canned_insert_of_an_invisible_answer_is_404(client, tenant, t, agent, other_tenant):
    foreign = CannedAnswer.objects.create(tenant=other_tenant, key="x", title="X", body="secret")
    client.force_login(agent)
    assert client.get(url("canned_insert", t, foreign.pk)).status_code == 404


def test_attachment_over_the_limit_is_refused_with_a_message(client, t, agent, settings):
    settings.ATTACHMENT_MAX_BYTES = 1024
    client.force_login(agent)
    big = SimpleUploadedFile("scan.pdf", b"x" * 2048, content_type="application/pdf")
    response = post(client, t, files=[big])
    assert response.status_code == 400
    page = response.content.decode()
    assert "“scan.pdf” is 2.0\xa0KB; files can be at most 1.0\xa0KB." in page
    assert not OutboundEmail.objects.exists()


def test_attachment_within_the_limit_is_sent(client, t, agent):
    client.force_login(agent)
    small = SimpleUploadedFile("notes.txt", b"hello", content_type="text/plain")
    assert post(client, t, files=[small]).status_code == 302
    message = Message.objects.get(ticket=t, kind=MessageKind.OUTBOUND)
    assert [a.filename for a in message.attachments.all()] == ["notes.txt"]


def test_sending_from_a_mailbox_the_agent_cannot_see_is_refused(client, tenant, t, agent):
    admin_only = f.mailbox(
        tenant, "SEC", members=[make_member(tenant, "x@acme.test", "agent").memberships.get()]
    )
    client.force_login(agent)
    response = post(client, t, mailbox=admin_only.pk)
    assert response.status_code == 400
    assert not OutboundEmail.objects.exists()


def test_canned_answer_files_are_offered_and_sent_along(client, tenant, t, agent):
    from tickets import canned

    answer = canned.save_answer(
        CannedAnswer(tenant=tenant, key="manual", title="Manual", body="See the manual."),
        files=[SimpleUploadedFile("manual.pdf", b"%PDF-1.4 manual", content_type="application/pdf")],
    )
    stored = answer.attachments.get()
    client.force_login(agent)
    data = client.get(url("canned_insert", t, answer.pk)).json()
    assert data["files"] == [{"id": stored.pk, "filename": "manual.pdf", "size": "15\xa0bytes"}]
    assert post(client, t, body=data["body"], canned_files=[stored.pk]).status_code == 302
    sent = Message.objects.get(ticket=t, kind=MessageKind.OUTBOUND).attachments.get()
    assert (sent.filename, sent.storage_key) == ("manual.pdf", stored.storage_key)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_composer_in_a_browser_tabs_keys_and_canned_answers(sign_in, live_server, tenant, agent, screenshot):
    from playwright.sync_api import expect

    box = f.mailbox(tenant, "SUP", email="support@acme.test", is_default=True)
    requester = f.contact(tenant, "dana@customer.test", "Dana Customer")
    t = f.ticket(tenant, "Printer on fire", requester=requester, mailbox=box)
    f.message(t, text="cc'ing my boss", to=["support@acme.test", "boss@customer.test"])
    CannedAnswer.objects.create(
        tenant=tenant, key="thanks", title="Thank you", body="Thanks {{ contact.first_name }}!"
    )
    page = sign_in(agent)
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/acme/tickets/{t.number}/")
    reply, note = page.locator('[data-composer-panel="reply"]'), page.locator('[data-composer-panel="note"]')
    expect(reply).to_be_visible()
    expect(note).to_be_hidden()
    page.locator("body").press("n")
    expect(note).to_be_visible()
    expect(page.locator("#note-body")).to_be_focused()
    page.locator("#note-body").press("Escape")
    page.locator("body").press("a")
    expect(reply).to_be_visible()
    expect(page.locator("[data-composer-cc]")).to_have_value("boss@customer.test")
    page.keyboard.press("Escape")  # the tab focused the body; keys work outside fields
    page.locator("body").press("f")
    expect(page.locator("[data-composer-to]")).to_have_value("")
    page.locator('[data-composer-tab="reply"]').click()
    expect(page.locator("[data-composer-to]")).to_have_value("dana@customer.test")
    page.locator("[data-canned-search]").fill("than")
    page.locator("[data-canned-insert]").first.click()
    expect(page.locator("[data-composer-body]")).to_have_value("Thanks Dana!")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator(".preview-text")).to_contain_text("Thanks Dana!")
    screenshot(page, "composer")
    page.get_by_role("button", name="Send and set pending").click()
    expect(page.get_by_text("Reply sent; the ticket is pending.")).to_be_visible()
    rows = list(OutboundEmail.objects.values_list("kind", "to"))
    assert ("reply", ["dana@customer.test"]) in rows, rows
    assert not errors, errors


def test_htmx_errors_come_back_as_regions_to_swap(client, t, agent):
    """An htmx post with an error marks the field errors and `seen` out-of-band and asks for no re-choosing of
    files (they stay in the page); a plain post says the browser forgot them."""
    client.force_login(agent)
    small = SimpleUploadedFile("notes.txt", b"hello", content_type="text/plain")
    response = post(client, t, to="", files=[small], htmx=True)
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_to-error" hx-swap-oob="true">Add at least one recipient.</p>' in page
    assert 'id="composer-seen"' in page and 'id="composer-alerts"' in page
    assert "Choose your files again" not in page
    assert 'id="thread" hx-swap-oob' not in page  # the thread is swapped only after a collision
    small.seek(0)
    plain = post(client, t, to="", files=[small]).content.decode()
    assert "Choose your files again" in plain and "hx-swap-oob" not in plain


def test_htmx_collision_swaps_the_thread_and_success_loads_the_new_message(client, t, agent):
    client.force_login(agent)
    seen = newest(t)
    arrived = f.message(t, text="Actually it is fixed now!")
    response = post(client, t, seen=seen, htmx=True)
    assert response.status_code == 409
    page = response.content.decode()
    assert 'id="thread" hx-swap-oob="true"' in page and "Actually it is fixed now!" in page
    assert f'id="composer-seen" value="{arrived.pk}" hx-swap-oob="true"' in page
    assert "data-send-anyway" in page
    response = post(client, t, seen=seen, force="1", htmx=True)
    assert response.status_code == 204
    message = Message.objects.get(ticket=t, kind=MessageKind.OUTBOUND)
    assert response["HX-Redirect"].endswith(f"/acme/tickets/{t.number}/#m-{message.pk}")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_files_stay_attached_through_an_error_and_a_collision(
    sign_in, live_server, tenant, agent, screenshot
):
    """The attachment survives a field error and the collision warning; "Send anyway" sends it."""
    from playwright.sync_api import expect

    box = f.mailbox(tenant, "SUP", email="support@acme.test", is_default=True)
    t = f.ticket(tenant, "Invoice wrong", requester=f.contact(tenant, "dana@customer.test", "Dana Customer"))
    t.mailbox = box
    t.save()
    page = sign_in(agent)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        # The browser logs every 4xx response; 400 and 409 are the composer's answers, not failures.
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not re.search(r"status of 40[09]", msg.text)
            else None
        ),
    )
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/acme/tickets/{t.number}/")
    page.evaluate("window.__samePage = true")
    files = page.locator('[data-composer-panel="reply"] input[name="files"]')
    files.set_input_files(
        {"name": "corrected-invoice.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 corrected"}
    )
    expect(page.locator("[data-file-names] .cf-file")).to_have_text("corrected-invoice.pdf")
    page.locator("[data-composer-body]").fill("Here is the corrected invoice.")

    # 1. A field error: only the error regions change.
    page.locator("[data-composer-to]").fill("")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("#id_to-error")).to_have_text("Add at least one recipient.")
    expect(page.locator("[data-composer-to]")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("[data-composer-to]")).to_be_focused()
    assert files.evaluate("input => input.files.length") == 1

    # 2. The customer writes meanwhile: the warning, the new message in the thread, still the file.
    page.locator("[data-composer-to]").fill("dana@customer.test")
    f.message(t, text="Never mind, I found the right one.")
    page.get_by_role("button", name="Send and solve").click()
    warning = page.locator(".composer-collision")
    expect(warning).to_contain_text("A new message arrived since you opened this ticket.")
    expect(page.locator("#thread")).to_contain_text("Never mind, I found the right one.")
    expect(page.locator("#id_to-error")).to_be_empty()
    expect(page.locator("[data-composer-to]")).not_to_have_attribute("aria-invalid", "true")
    assert files.evaluate("input => [...input.files].map(f => f.name)") == ["corrected-invoice.pdf"]
    assert page.evaluate("window.__samePage") is True  # no reload so far
    assert not OutboundEmail.objects.exists()
    screenshot(page, "collision")

    # 3. Send anyway: sent with the file, and the ticket page shows the reply.
    page.get_by_role("button", name="Send anyway").click()
    expect(page.get_by_text("Reply sent; the ticket is solved.")).to_be_visible()
    message = Message.objects.get(ticket=t, kind=MessageKind.OUTBOUND)
    assert [a.filename for a in message.attachments.all()] == ["corrected-invoice.pdf"]
    assert OutboundEmail.objects.get(ticket_message=message).to == ["dana@customer.test"]
    # Solved by the agent (the test mailbox cannot deliver, so the failure notice may reopen it later).
    assert TicketEvent.objects.filter(ticket=t, field="status", new="Solved", actor=agent).exists()
    expect(page).to_have_url(f"{live_server.url}/acme/tickets/{t.number}/#m-{message.pk}")
    expect(page.locator(f"#m-{message.pk}")).to_be_in_viewport()
    screenshot(page, "sent")
    assert not errors, errors
