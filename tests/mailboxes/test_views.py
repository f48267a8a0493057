"""The mailbox settings pages: who may open them, manual setup on real servers, sections, copy, delete."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.access import tenant_reverse
from mailboxes.models import ConnectionTest, EmailSettings, Health, Mailbox, OutboundEmail
from tests.mailboxes.conftest import SUPPORT, make_mailbox

pytestmark = pytest.mark.django_db


def mailbox_urls() -> list[tuple[str, URLPattern]]:
    """Every URL of the mailboxes app inside a tenant, found by walking the URLconf."""

    def walk(patterns, ns=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, p.namespace or ns)
            elif ns == "mailboxes":
                yield p

    return [(p.name, p) for p in walk(get_resolver().url_patterns)]


def url_of(tenant, pattern: URLPattern, mailbox: Mailbox, test: ConnectionTest) -> str:
    kwargs = {}
    for name in re.findall(r"<(?:\w+:)?(\w+)>", str(pattern.pattern)):
        kwargs[name] = {
            "mailbox_id": mailbox.pk,
            "test_id": test.pk,
            "section": "details",
            "provider": "google",
        }[name]
    return tenant_reverse(tenant, f"mailboxes:{pattern.name}", **kwargs)


@pytest.fixture
def mailbox(tenant) -> Mailbox:
    return make_mailbox(tenant, imap_port=993, smtp_port=587)


def test_every_mailbox_page_is_admin_only(tenant, mailbox, as_agent):
    test = ConnectionTest.objects.create(tenant=tenant, mailbox=mailbox)
    names = {name for name, _ in mailbox_urls()}
    assert {"list", "add", "manual", "detail", "section", "copy", "delete", "email_settings"} <= names
    for name, pattern in mailbox_urls():
        url = url_of(tenant, pattern, mailbox, test)
        assert getattr(pattern.callback, "required_role", None) == "admin", name
        assert as_agent.get(url).status_code in (403, 405), url
        assert as_agent.post(url).status_code == 403, url
    assert Mailbox.objects.filter(pk=mailbox.pk).exists()


def test_admin_of_another_tenant_gets_404_everywhere(tenant, mailbox, as_outsider, outsider):
    test = ConnectionTest.objects.create(tenant=tenant, mailbox=mailbox)
    for _name, pattern in mailbox_urls():
        url = url_of(tenant, pattern, mailbox, test)
        assert as_outsider.get(url).status_code == 404, url
        assert as_outsider.post(url).status_code == 404, url
    # ...and through their own tenant's URLs, another tenant's mailbox is not found either.
    own = outsider.memberships.get().tenant
    assert as_outsider.get(tenant_reverse(own, "mailboxes:detail", mailbox.pk)).status_code == 404
    assert (
        as_outsider.post(
            tenant_reverse(own, "mailboxes:delete", mailbox.pk), {"confirm_email": SUPPORT}
        ).status_code
        == 404
    )
    assert Mailbox.objects.filter(pk=mailbox.pk).exists()


def test_agents_see_no_mailbox_settings_link(tenant, as_agent, as_admin):
    assert "Mailboxes" not in as_agent.get(tenant_reverse(tenant, "tickets:inbox")).content.decode()
    assert (
        tenant_reverse(tenant, "mailboxes:list")
        in as_admin.get(tenant_reverse(tenant, "tickets:inbox")).content.decode()
    )


def test_overview_lists_mailboxes_with_health(tenant, as_admin, django_assert_max_num_queries):
    make_mailbox(tenant, key="SUP", health=Health.CONNECTED, is_default=True)
    make_mailbox(
        tenant, key="SAL", email="sales@acme.test", name="Sales", provider="google", auth_method="oauth2",
        health=Health.NEEDS_RECONNECT, last_error="Google no longer accepts the connection (invalid_grant).",
    )  # fmt: skip
    for i in range(5):
        make_mailbox(tenant, key=f"M{i}", email=f"m{i}@acme.test", name=f"M {i}")
    with django_assert_max_num_queries(12):
        page = as_admin.get(tenant_reverse(tenant, "mailboxes:list")).content.decode()
    assert "sales@acme.test" in page and "Needs reconnect" in page and "invalid_grant" in page
    assert "Default sending account" in page


# --- manual setup against real servers -------------------------------------------------------------------------


def manual_data(**overrides) -> dict:
    data = {
        "email": SUPPORT,
        "name": "Support",
        "key": "",
        "sender_name": "Acme Support",
        "imap_host": "127.0.0.1",
        "imap_security": "ssl",
        "imap_username": "",
        "imap_password": "supportpw",
        "smtp_host": "127.0.0.1",
        "smtp_security": "ssl",
        "smtp_same_credentials": "on",
        "smtp_username": "",
        "smtp_password": "",
        "connect_timeout": "5",
        "auth_timeout": "10",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize("security", ["ssl", "starttls", "none"])
def test_manual_setup_creates_and_tests_the_mailbox(
    as_admin, tenant, dovecot, smtp, rig_ca, private_ok, security
):
    imap_port = dovecot.imaps_port if security == "ssl" else dovecot.imap_port
    smtp_port = {"ssl": smtp.tls_port, "starttls": smtp.starttls_port, "none": smtp.plain_port}[security]
    data = manual_data(
        imap_port=imap_port, imap_security=security, smtp_port=smtp_port, smtp_security=security
    )

    response = as_admin.post(tenant_reverse(tenant, "mailboxes:manual"), data)

    mailbox = Mailbox.objects.get(tenant=tenant)
    assert response.status_code == 302 and response["Location"] == mailbox.get_absolute_url()
    assert (mailbox.key, mailbox.is_default, mailbox.imap_password) == ("SUPPO", True, "supportpw")
    test = mailbox.connection_tests.get()
    assert test.status == "passed", test.steps
    assert test.reason == "created"
    mailbox.refresh_from_db()
    assert mailbox.health == Health.CONNECTED
    assert {"Sent", "Drafts", "Trash", "Archive"} <= set(mailbox.detected_folders)
    assert (mailbox.folder_sent, mailbox.folder_trash) == ("Sent", "Trash")
    (captured,) = smtp.messages
    assert captured.rcpt_tos == (SUPPORT,) and captured.message["X-Helpdesk-Test"] == str(test.pk)
    assert OutboundEmail.objects.get(pk=test.outbound_id).status == "sent"
    page = as_admin.get(mailbox.get_absolute_url()).content.decode()
    assert "Everything works." in page


def test_manual_setup_shows_errors_next_to_fields(as_admin, tenant):
    make_mailbox(tenant, key="SUP")
    response = as_admin.post(tenant_reverse(tenant, "mailboxes:manual"), manual_data(imap_port="", key="sup"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "This address is already connected to the workspace." in page
    assert "Another mailbox uses this key." in page
    assert 'value="supportpw"' not in page  # a password is never sent back, not even after an error


def test_test_button_can_also_send_to_the_admin(as_admin, admin, tenant, imap_mailbox, smtp):
    response = as_admin.post(
        tenant_reverse(tenant, "mailboxes:test", imap_mailbox.pk),
        {"also_send_to_me": "on"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert 'hx-trigger="every 1s"' in response.content.decode()  # the page polls until the worker is done
    test = imap_mailbox.connection_tests.get()
    page = as_admin.get(
        tenant_reverse(tenant, "mailboxes:test_status", imap_mailbox.pk, test.pk)
    ).content.decode()
    assert "Everything works." in page
    assert smtp.messages[-1].rcpt_tos == (SUPPORT, admin.email)


def test_test_status_polls_until_finished(as_admin, tenant, imap_mailbox):
    test = ConnectionTest.objects.create(tenant=tenant, mailbox=imap_mailbox)
    url = tenant_reverse(tenant, "mailboxes:test_status", imap_mailbox.pk, test.pk)
    page = as_admin.get(url).content.decode()
    assert 'hx-trigger="every 1s"' in page and "Testing the connection" in page
    ConnectionTest.objects.filter(pk=test.pk).update(status="passed", steps=[])
    page = as_admin.get(url).content.decode()
    assert "every 1s" not in page and "Everything works." in page


# --- detail sections -----------------------------------------------------------------------------------------


def section(as_admin, tenant, mailbox, name, data, htmx=True):
    payload = {f"{name}-{k}": v for k, v in data.items()}
    extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return as_admin.post(tenant_reverse(tenant, "mailboxes:section", mailbox.pk, name), payload, **extra)


def test_sections_save_separately_without_touching_other_fields(as_admin, tenant, imap_mailbox):
    Mailbox.objects.filter(pk=imap_mailbox.pk).update(messages_imported=7)  # as if the poller just ran
    response = section(
        as_admin, tenant, imap_mailbox, "signature", {"signature": "Cheers,\n{{ agent.name }}"}
    )
    assert response.status_code == 200 and "✓ Saved" in response.content.decode()
    imap_mailbox.refresh_from_db()
    assert imap_mailbox.signature == "Cheers,\n{{ agent.name }}"
    assert imap_mailbox.messages_imported == 7
    assert not imap_mailbox.connection_tests.exists()  # not a connection change


def test_section_errors_are_shown_next_to_the_field(as_admin, tenant, imap_mailbox):
    response = section(
        as_admin,
        tenant,
        imap_mailbox,
        "autoreply",
        {"autoreply_enabled": "on", "autoreply_subject": "Hi {% load x %}", "autoreply_body": ""},
    )
    page = response.content.decode()
    assert response.status_code == 422
    assert "Only simple variables" in page or "mistake" in page
    assert "Write the message customers receive" in page


def test_ticket_settings_use_the_tenants_queues_only(as_admin, tenant, other_tenant, imap_mailbox):
    from tickets.models import Queue

    ours = Queue.objects.create(tenant=tenant, name="First line")
    theirs = Queue.objects.create(tenant=other_tenant, name="Globex queue")
    data = {"tickets_enabled": "on", "after_import": "move", "after_import_folder": "", "poll_interval": "60"}
    page = section(
        as_admin, tenant, imap_mailbox, "tickets", {**data, "default_queue": theirs.pk}
    ).content.decode()
    assert "Select a valid choice" in page and "Choose the folder" in page
    section(
        as_admin,
        tenant,
        imap_mailbox,
        "tickets",
        {**data, "default_queue": ours.pk, "after_import_folder": "Archive"},
    )
    imap_mailbox.refresh_from_db()
    assert (imap_mailbox.default_queue, imap_mailbox.after_import_folder) == (ours, "Archive")


def test_empty_password_means_unchanged_and_is_never_sent_back(as_admin, tenant, imap_mailbox, dovecot, smtp):
    data = {
        "imap_host": "127.0.0.1", "imap_port": dovecot.imaps_port, "imap_security": "ssl", "imap_username": SUPPORT,
        "imap_password": "", "smtp_host": "127.0.0.1", "smtp_port": smtp.starttls_port, "smtp_security": "starttls",
        "smtp_same_credentials": "on", "connect_timeout": 5, "auth_timeout": 10,
    }  # fmt: skip
    response = section(as_admin, tenant, imap_mailbox, "connection", data)
    assert response.status_code == 200
    imap_mailbox.refresh_from_db()
    assert imap_mailbox.imap_password == "supportpw"
    assert not imap_mailbox.connection_tests.exists()  # nothing changed: no new test
    assert "supportpw" not in as_admin.get(imap_mailbox.get_absolute_url()).content.decode()


def test_changing_connection_details_runs_the_test_again(as_admin, tenant, imap_mailbox, dovecot, smtp):
    data = {
        "imap_host": "127.0.0.1", "imap_port": dovecot.imap_port, "imap_security": "starttls", "imap_username": SUPPORT,
        "imap_password": "", "smtp_host": "127.0.0.1", "smtp_port": smtp.starttls_port, "smtp_security": "starttls",
        "smtp_same_credentials": "on", "connect_timeout": 5, "auth_timeout": 10,
    }  # fmt: skip
    response = section(as_admin, tenant, imap_mailbox, "connection", data)
    page = response.content.decode()
    assert "testing the connection" in page
    assert re.search(r'<div id="test-panel"[^>]* hx-swap-oob="true"', page)
    test = imap_mailbox.connection_tests.get()
    assert (test.reason, test.status) == ("changed", "passed")


def test_visibility_needs_members_when_restricted(as_admin, tenant, imap_mailbox, agent):
    page = section(as_admin, tenant, imap_mailbox, "visibility", {"visibility": "members"}).content.decode()
    assert "Choose at least one member" in page
    membership = agent.memberships.get()
    section(
        as_admin, tenant, imap_mailbox, "visibility", {"visibility": "members", "visible_to": [membership.pk]}
    )
    assert list(imap_mailbox.visible_to.all()) == [membership]


def test_unknown_section_is_404(as_admin, tenant, imap_mailbox):
    assert section(as_admin, tenant, imap_mailbox, "nope", {}).status_code == 404


# --- copy, default, disable, delete ----------------------------------------------------------------------------


def test_create_a_copy_for_another_address_on_the_domain(as_admin, tenant, imap_mailbox, dovecot, agent):
    imap_mailbox.signature = "Sig"
    imap_mailbox.autoreply_enabled, imap_mailbox.autoreply_body = True, "Thanks"
    imap_mailbox.save()
    url = tenant_reverse(tenant, "mailboxes:copy", imap_mailbox.pk)
    page = as_admin.post(
        url, {"email": "bob@example.test", "name": "Bob", "imap_password": "x"}
    ).content.decode()
    assert "needs an address at acme.test" in page

    response = as_admin.post(
        url, {"email": "support2@acme.test", "name": "Second line", "imap_password": "support2pw"}
    )

    copy = Mailbox.objects.get(email="support2@acme.test")
    assert response["Location"] == copy.get_absolute_url()
    assert (copy.imap_host, copy.imap_port, copy.smtp_port) == (
        imap_mailbox.imap_host,
        imap_mailbox.imap_port,
        imap_mailbox.smtp_port,
    )
    assert (copy.signature, copy.autoreply_body, copy.imap_username) == (
        "Sig",
        "Thanks",
        "support2@acme.test",
    )
    assert copy.imap_password == "support2pw" and not copy.is_default and copy.key != imap_mailbox.key
    assert copy.connection_tests.get().status == "passed"


def test_default_star_moves(as_admin, tenant):
    first = make_mailbox(tenant, key="A", is_default=True)
    second = make_mailbox(tenant, key="B", email="b@acme.test")
    as_admin.post(tenant_reverse(tenant, "mailboxes:default", second.pk))
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.is_default, second.is_default) == (False, True)


def test_disable_and_enable(as_admin, tenant, imap_mailbox):
    as_admin.post(tenant_reverse(tenant, "mailboxes:toggle", imap_mailbox.pk), {"active": "0"})
    imap_mailbox.refresh_from_db()
    assert (imap_mailbox.is_active, imap_mailbox.health) == (False, Health.DISABLED)
    assert not Mailbox.objects.due_for_poll().filter(pk=imap_mailbox.pk).exists()
    as_admin.post(tenant_reverse(tenant, "mailboxes:toggle", imap_mailbox.pk), {"active": "1"})
    imap_mailbox.refresh_from_db()
    assert imap_mailbox.is_active and imap_mailbox.health == Health.CONNECTED


def test_delete_needs_the_address_typed_and_keeps_tickets(as_admin, tenant, imap_mailbox):
    from tickets.models import Ticket

    ticket = Ticket.objects.create(tenant=tenant, number=1, mailbox=imap_mailbox, title="Printer on fire")
    url = tenant_reverse(tenant, "mailboxes:delete", imap_mailbox.pk)
    page = as_admin.post(url, {"confirm_email": "wrong@acme.test"}).content.decode()
    assert "That is not the address of this mailbox" in page
    assert Mailbox.objects.filter(pk=imap_mailbox.pk).exists()

    response = as_admin.post(url, {"confirm_email": SUPPORT.upper()})

    assert response.status_code == 302
    assert not Mailbox.objects.filter(pk=imap_mailbox.pk).exists()
    ticket.refresh_from_db()
    assert ticket.mailbox is None


# --- tenant email defaults -------------------------------------------------------------------------------------


def test_email_defaults_need_content_in_the_layout(as_admin, tenant, imap_mailbox):
    url = tenant_reverse(tenant, "mailboxes:email_settings")
    data = {
        "sender_name_format": "agent_via",
        "signature": "{{ agent.name }}",
        "greeting": "Hi,",
        "html_layout": "<div>no content</div>",
    }
    page = as_admin.post(url, data).content.decode()
    assert "The layout must contain {{ content }}" in page

    data.update(
        html_layout="<table><tr><td>{{ content }}</td></tr></table>",
        cc1="archive@acme.test",
        default_mailbox=imap_mailbox.pk,
    )
    assert as_admin.post(url, data).status_code == 302
    settings_obj = EmailSettings.for_tenant(tenant)
    assert settings_obj.cc1 == "archive@acme.test" and "{{ content }}" in settings_obj.html_layout
    imap_mailbox.refresh_from_db()
    assert imap_mailbox.is_default


def test_layout_preview_renders_sample_content_in_a_locked_down_frame(as_admin, tenant):
    url = tenant_reverse(tenant, "mailboxes:layout_preview")
    response = as_admin.post(
        url, {"html_layout": '<div style="color:red">{{ content }}</div><p>{{ tenant.name }}</p>'}
    )
    page = response.content.decode()
    assert "Thanks for getting in touch" in page and "<p>Acme Support</p>" in page
    assert "default-src 'none'" in response["Content-Security-Policy"]
    assert "script" not in response["Content-Security-Policy"]
