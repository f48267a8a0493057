"""OAuth mailboxes against the rig's authorization server (DOT), Dovecot (XOAUTH2 by introspection) and
Postfix (XOAUTH2 through Dovecot SASL): connect, refresh, revoke, reconnect, and the state checks."""

from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from accounts.access import tenant_reverse
from mailboxes import imap, oauth
from mailboxes import smtp as smtp_session
from mailboxes.errors import NeedsReconnect
from mailboxes.models import ConnectionTest, Health, Mailbox, OutboundEmail, OutboundKind
from tests.mailboxes.conftest import (
    SUPPORT,
    callback_path,
    client_for,
    connect_via_client,
    consent,
    oauth_mailbox,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("oauth_providers")]


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_connect_creates_mailbox_with_standard_settings_and_passes_the_test(
    as_admin, tenant, oauth_server, oauth_providers, dovecot, provider
):
    response, _ = connect_via_client(as_admin, tenant, oauth_server, provider, SUPPORT)

    mailbox = Mailbox.objects.get(tenant=tenant, email=SUPPORT)
    assert response.status_code == 302 and response["Location"] == mailbox.get_absolute_url()
    config = oauth_providers[provider]
    assert (mailbox.provider, mailbox.auth_method) == (provider, "oauth2")
    assert (mailbox.imap_host, mailbox.imap_port, mailbox.imap_security) == (
        "127.0.0.1",
        config["imap_port"],
        "ssl",
    )
    assert (mailbox.smtp_port, mailbox.smtp_security) == (config["smtp_port"], config["smtp_security"])
    assert mailbox.oauth_refresh_token and mailbox.oauth_access_token and mailbox.oauth_expires_at
    test = ConnectionTest.objects.get(mailbox=mailbox)
    assert test.status == "passed", test.steps
    assert mailbox.health == Health.CONNECTED
    # The test mail went out through Postfix with XOAUTH2 and arrived in the mailbox over LMTP.
    sent = OutboundEmail.objects.get(mailbox=mailbox, kind=OutboundKind.TEST)
    assert sent.status == "sent"
    dovecot.wait_for_messages(SUPPORT, match=lambda raw: sent.message_id.encode() in raw)


def test_authorization_request_uses_pkce_state_and_account_picker(as_admin, tenant):
    response = as_admin.post(tenant_reverse(tenant, "mailboxes:connect", "microsoft"))
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["prompt"] == ["select_account"]
    assert (
        "offline_access" in query["scope"][0] and "https://outlook.office.com/SMTP.Send" in query["scope"][0]
    )
    assert len(query["state"][0]) >= 32
    google = parse_qs(
        urlsplit(as_admin.post(tenant_reverse(tenant, "mailboxes:connect", "google"))["Location"]).query
    )
    assert "select_account" in google["prompt"][0] and google["access_type"] == ["offline"]
    assert google["scope"][0].split() == ["https://mail.google.com/", "openid", "email"]


def test_forged_state_is_rejected(as_admin, tenant, oauth_server):
    start = as_admin.post(tenant_reverse(tenant, "mailboxes:connect", "microsoft"))
    location = consent(oauth_server, start["Location"], SUPPORT)
    forged = callback_path(location).replace("state=", "state=forged")
    response = as_admin.get(forged)
    assert response.status_code == 400
    assert b"invalid, expired or was already used" in response.content
    assert not Mailbox.objects.filter(tenant=tenant).exists()


def test_replayed_state_is_rejected(as_admin, tenant, oauth_server):
    response, location = connect_via_client(as_admin, tenant, oauth_server, "microsoft", SUPPORT)
    assert response.status_code == 302
    replay = as_admin.get(callback_path(location))
    assert replay.status_code == 400
    assert Mailbox.objects.filter(tenant=tenant).count() == 1


def test_state_from_another_session_is_rejected(as_admin, client_factory_admin, tenant, oauth_server):
    start = as_admin.post(tenant_reverse(tenant, "mailboxes:connect", "microsoft"))
    location = consent(oauth_server, start["Location"], SUPPORT)
    response = client_factory_admin.get(callback_path(location))  # the same admin, another browser
    assert response.status_code == 400
    assert not Mailbox.objects.filter(tenant=tenant).exists()


@pytest.fixture
def client_factory_admin(admin):
    return client_for(admin)


def test_connecting_an_address_the_tenant_already_has_is_refused(as_admin, tenant, oauth_server):
    connect_via_client(as_admin, tenant, oauth_server, "microsoft", SUPPORT)
    response, _ = connect_via_client(as_admin, tenant, oauth_server, "google", SUPPORT)
    assert Mailbox.objects.filter(tenant=tenant).count() == 1
    page = as_admin.get(response["Location"])
    assert f"{SUPPORT} is already connected to this workspace" in page.content.decode()


def test_imap_and_smtp_sign_in_with_xoauth2(tenant, oauth_server, oauth_providers, dovecot, postfix):
    mailbox = oauth_mailbox(tenant, oauth_server, oauth_providers, "microsoft")
    with imap.session(mailbox) as client:
        assert b"INBOX" in b" ".join(f[2].encode() for f in client.list_folders())
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SUPPORT, "bob@example.test", "xoauth2 smtp"
    message.set_content("sent with a bearer token")
    with smtp_session.session(mailbox) as conn:
        conn.send_message(message)
    dovecot.wait_for_messages("bob@example.test", match=lambda raw: b"xoauth2 smtp" in raw)


def test_token_is_refreshed_ahead_of_expiry_and_the_rotated_refresh_token_saved(
    tenant, oauth_server, oauth_providers, dovecot
):
    mailbox = oauth_mailbox(tenant, oauth_server, oauth_providers)
    old_access, old_refresh = str(mailbox.oauth_access_token), str(mailbox.oauth_refresh_token)
    Mailbox.objects.filter(pk=mailbox.pk).update(oauth_expires_at=timezone.now() + timedelta(seconds=60))
    mailbox.refresh_from_db()

    with imap.session(mailbox):
        pass

    mailbox.refresh_from_db()
    assert str(mailbox.oauth_access_token) != old_access
    assert str(mailbox.oauth_refresh_token) != old_refresh  # DOT rotates refresh tokens
    assert mailbox.oauth_expires_at > timezone.now() + timedelta(minutes=30)
    assert not oauth_server.introspect(old_access)["active"]


def test_token_refused_by_the_server_is_refreshed_once_and_retried(
    tenant, oauth_server, oauth_providers, dovecot
):
    """Our clock says the token is fine, the provider says it expired: refresh after the auth failure."""
    mailbox = oauth_mailbox(tenant, oauth_server, oauth_providers)
    old_access = str(mailbox.oauth_access_token)
    assert oauth_server.expire_access_tokens(SUPPORT) >= 1
    with imap.session(mailbox) as client:
        assert client.capabilities()
    mailbox.refresh_from_db()
    assert str(mailbox.oauth_access_token) != old_access


def test_unneeded_refresh_is_skipped(tenant, oauth_server, oauth_providers, dovecot):
    mailbox = oauth_mailbox(tenant, oauth_server, oauth_providers)
    token = str(mailbox.oauth_access_token)
    assert oauth.access_token(mailbox) == token


def test_revoked_consent_turns_mailbox_needs_reconnect_emails_admins_once_and_shows_banner(
    tenant,
    owner,
    admin,
    agent,
    oauth_server,
    oauth_providers,
    dovecot,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    mailbox = oauth_mailbox(tenant, oauth_server, oauth_providers)
    oauth_server.revoke_all(SUPPORT)

    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(NeedsReconnect),
        imap.session(mailbox),
    ):
        pass
    mailbox.refresh_from_db()
    assert mailbox.health == Health.NEEDS_RECONNECT
    assert "Reconnect" in mailbox.last_error_advice
    assert sorted(m.to[0] for m in mailoutbox) == sorted([owner.email, admin.email])
    assert "reconnect" in mailoutbox[0].subject.lower() and mailbox.get_absolute_url() in mailoutbox[0].body

    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(NeedsReconnect),
        smtp_session.session(mailbox),
    ):
        pass
    assert len(mailoutbox) == 2  # once per breakage, not per attempt

    page = client_for(admin).get(tenant_reverse(tenant, "tickets:inbox")).content.decode()
    assert f"{SUPPORT} needs to be reconnected" in page
    page = client_for(agent).get(tenant_reverse(tenant, "tickets:inbox")).content.decode()
    assert "needs to be reconnected" not in page


def test_reconnect_notice_that_cannot_be_sent_is_logged_not_raised(
    tenant, owner, admin, oauth_server, oauth_providers, settings, caplog
):
    mailbox = oauth_mailbox(tenant, oauth_server, oauth_providers)
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2},  # discard port: refused
        }
    }
    assert oauth.notify_admins_needs_reconnect(mailbox.pk, "revoked") == 0
    assert caplog.text.count("reconnect notice to") == 2


def test_reconnect_restores_the_mailbox(as_admin, tenant, oauth_server, oauth_providers, dovecot, mailoutbox):
    mailbox = oauth_mailbox(tenant, oauth_server, oauth_providers)
    oauth_server.revoke_all(SUPPORT)
    with pytest.raises(NeedsReconnect):
        oauth.access_token(mailbox, force_refresh=True)

    response, _ = connect_via_client(as_admin, tenant, oauth_server, "microsoft", SUPPORT, reconnect=mailbox)

    assert response["Location"] == mailbox.get_absolute_url()
    mailbox.refresh_from_db()
    assert mailbox.health == Health.CONNECTED
    assert mailbox.reconnect_notified_at is None
    assert Mailbox.objects.filter(tenant=tenant).count() == 1
    with imap.session(mailbox):
        pass
    assert "needs to be reconnected" not in as_admin.get(mailbox.get_absolute_url()).content.decode()


def test_reconnect_with_another_address_is_refused(as_admin, tenant, oauth_server, oauth_providers, dovecot):
    mailbox = oauth_mailbox(tenant, oauth_server, oauth_providers)
    tokens = (str(mailbox.oauth_access_token), str(mailbox.oauth_refresh_token))

    response, _ = connect_via_client(
        as_admin, tenant, oauth_server, "microsoft", "support2@acme.test", reconnect=mailbox
    )

    mailbox.refresh_from_db()
    assert (str(mailbox.oauth_access_token), str(mailbox.oauth_refresh_token)) == tokens
    assert Mailbox.objects.filter(tenant=tenant).count() == 1
    page = as_admin.get(response["Location"]).content.decode()
    assert "You signed in as support2@acme.test, but this mailbox is support@acme.test" in page


def test_deleting_an_oauth_mailbox_revokes_its_token(as_admin, tenant, oauth_server, oauth_providers):
    mailbox = oauth_mailbox(tenant, oauth_server, oauth_providers)
    access, refresh = str(mailbox.oauth_access_token), str(mailbox.oauth_refresh_token)
    assert oauth_server.introspect(access)["active"]

    response = as_admin.post(
        tenant_reverse(tenant, "mailboxes:delete", mailbox.pk), {"confirm_email": SUPPORT}
    )

    assert response.status_code == 302
    assert not Mailbox.objects.filter(pk=mailbox.pk).exists()
    assert not oauth_server.introspect(access)["active"]
    with pytest.raises(AssertionError, match="invalid_grant"):
        oauth_server.refresh(refresh)


@pytest.mark.django_db(transaction=True)
def test_two_workers_refreshing_at_once_refresh_only_once(tenant, oauth_server, oauth_providers):
    """With refresh-token rotation, a second refresh with the old token would fail (invalid_grant) and wrongly
    turn the mailbox "needs reconnect"; the lease makes the second worker wait and use the first one's token."""
    import threading

    from django.db import connection

    mailbox = oauth_mailbox(tenant, oauth_server, oauth_providers)
    Mailbox.objects.filter(pk=mailbox.pk).update(oauth_expires_at=timezone.now())
    results, errors = [], []
    barrier = threading.Barrier(2)

    def worker():
        try:
            own = Mailbox.objects.get(pk=mailbox.pk)
            barrier.wait()
            results.append(oauth.access_token(own))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert errors == []
    assert len(results) == 2 and results[0] == results[1]
    mailbox.refresh_from_db()
    assert mailbox.health != Health.NEEDS_RECONNECT
    assert str(mailbox.oauth_access_token) == results[0]
    assert oauth_server.introspect(results[0])["active"]


def test_copy_of_an_oauth_mailbox_signs_in_the_new_address(
    as_admin, tenant, oauth_server, oauth_providers, dovecot
):
    source = oauth_mailbox(tenant, oauth_server, oauth_providers)
    Mailbox.objects.filter(pk=source.pk).update(
        signature="Team sig", autoreply_enabled=True, autoreply_body="Thanks!"
    )
    url = tenant_reverse(tenant, "mailboxes:copy", source.pk)

    start = as_admin.post(url, {"email": "support2@acme.test", "name": "Second line"})
    assert "login_hint=support2%40acme.test" in start["Location"]
    wrong = as_admin.get(callback_path(consent(oauth_server, start["Location"], SUPPORT)))
    assert "the copy was meant for support2@acme.test" in as_admin.get(wrong["Location"]).content.decode()
    assert Mailbox.objects.filter(tenant=tenant).count() == 1

    start = as_admin.post(url, {"email": "support2@acme.test", "name": "Second line"})
    response = as_admin.get(callback_path(consent(oauth_server, start["Location"], "support2@acme.test")))

    copy = Mailbox.objects.get(email="support2@acme.test")
    assert response["Location"] == copy.get_absolute_url()
    assert (copy.name, copy.signature, copy.autoreply_body, copy.imap_username) == (
        "Second line", "Team sig", "Thanks!", "support2@acme.test",
    )  # fmt: skip
    assert copy.is_oauth and str(copy.oauth_refresh_token) != str(source.oauth_refresh_token)
    assert copy.connection_tests.get().status == "passed"
