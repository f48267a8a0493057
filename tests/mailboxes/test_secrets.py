"""Passwords and tokens: encrypted at rest, never in logs or pages, and re-encrypted by key rotation."""

import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from accounts.access import tenant_reverse
from mailboxes import connection_test, imap, vault
from mailboxes.models import ConnectionTest, Mailbox
from tests.mailboxes.conftest import make_mailbox, oauth_mailbox

pytestmark = pytest.mark.django_db

PASSWORD = "supportpw"


def raw_rows() -> str:
    """Every column of every mailbox row, as the database stores it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM mailboxes_mailbox")
        return repr(cursor.fetchall())


def test_password_and_tokens_are_encrypted_in_the_database(tenant, oauth_server, oauth_providers):
    make_mailbox(
        tenant, key="PW", email="pw@acme.test", imap_password="s3cret-imap", smtp_password="s3cret-smtp"
    )
    mailbox = oauth_mailbox(tenant, oauth_server, oauth_providers)
    stored = raw_rows()
    for secret in (
        "s3cret-imap",
        "s3cret-smtp",
        str(mailbox.oauth_access_token),
        str(mailbox.oauth_refresh_token),
    ):
        assert secret not in stored
    assert stored.count("fernet:") >= 4
    assert Mailbox.objects.get(email="pw@acme.test").imap_password == "s3cret-imap"


def test_secrets_stay_out_of_logs(tenant, imap_mailbox, oauth_server, oauth_providers, caplog):
    oauth = oauth_mailbox(tenant, oauth_server, oauth_providers, username="support2@acme.test")
    caplog.set_level(logging.DEBUG)
    for mailbox in (imap_mailbox, oauth):
        connection_test.run(ConnectionTest.objects.create(tenant=tenant, mailbox=mailbox))
        with imap.session(mailbox):
            pass
    wrong = make_mailbox(
        tenant, key="W", email="w@acme.test", imap_port=imap_mailbox.imap_port, imap_password="wrong-pw-123"
    )
    connection_test.run(ConnectionTest.objects.create(tenant=tenant, mailbox=wrong))
    logs = caplog.text + repr([r.args for r in caplog.records])
    assert "imapclient" in logs  # the IMAP conversation was logged at debug level...
    for secret in (PASSWORD, "wrong-pw-123", str(oauth.oauth_access_token), str(oauth.oauth_refresh_token)):
        assert secret not in logs  # ...without any secret in it
    assert repr(imap_mailbox.imap_password) == "Secret('********')"


def test_secrets_stay_out_of_pages(as_admin, tenant, imap_mailbox, oauth_server, oauth_providers):
    oauth = oauth_mailbox(tenant, oauth_server, oauth_providers, username="support2@acme.test")
    pages = [
        as_admin.get(tenant_reverse(tenant, "mailboxes:list")),
        as_admin.get(imap_mailbox.get_absolute_url()),
        as_admin.get(oauth.get_absolute_url()),
        as_admin.get(tenant_reverse(tenant, "mailboxes:copy", imap_mailbox.pk)),
        as_admin.post(
            tenant_reverse(tenant, "mailboxes:section", imap_mailbox.pk, "connection"),
            {"connection-imap_host": "", "connection-imap_password": "typed-but-invalid"},
        ),
    ]
    text = "".join(p.content.decode() for p in pages)
    for secret in (
        PASSWORD,
        "typed-but-invalid",
        str(oauth.oauth_access_token),
        str(oauth.oauth_refresh_token),
    ):
        assert secret not in text
    assert 'name="connection-imap_password"' in text


def test_key_rotation_re_encrypts_with_the_new_key(tenant, settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    vault.reset_keys_cache()
    try:
        make_mailbox(tenant, imap_password="rotate-me", oauth_refresh_token="refresh-me")
        before = raw_rows()

        settings.FIELD_ENCRYPTION_KEYS = [
            new_key,
            old_key,
        ]  # the new key in front, the old one still decrypts
        vault.reset_keys_cache()
        assert Mailbox.objects.get().imap_password == "rotate-me"
        call_command("rotate_secrets", stdout=open("/dev/null", "w"))  # noqa: SIM115

        after = raw_rows()
        assert after != before and "rotate-me" not in after
        settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key is gone: everything still decrypts
        vault.reset_keys_cache()
        mailbox = Mailbox.objects.get()
        assert (mailbox.imap_password, mailbox.oauth_refresh_token) == ("rotate-me", "refresh-me")

        settings.FIELD_ENCRYPTION_KEYS = [old_key]  # and the old key alone no longer does
        vault.reset_keys_cache()
        with pytest.raises(ValueError, match="none of FIELD_ENCRYPTION_KEYS fits"):
            Mailbox.objects.get()
    finally:
        settings.FIELD_ENCRYPTION_KEYS = []
        vault.reset_keys_cache()
