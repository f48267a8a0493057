"""OAuth mailboxes: a refused token is refreshed once and the mail goes. The Sent-folder copy: made in
Dovecot when the mailbox asks for it and its provider does not keep sent mail itself, never otherwise."""

from __future__ import annotations

import email
import email.policy

import pytest

from mailboxes import outbound
from mailboxes.models import OutboundEmail, Provider
from tests.mailboxes.conftest import SUPPORT, oauth_mailbox
from tests.outbound.conftest import make_ticket
from tickets import replies

pytestmark = pytest.mark.django_db


def reply(ticket, agent, capture) -> OutboundEmail:
    with capture(execute=True):
        message = replies.send_reply(
            ticket, author=agent, to=None, cc=[], bcc=[], body="Done.", attachments=[]
        )
    row = OutboundEmail.objects.get(ticket_message=message)
    row.refresh_from_db()
    return row


def test_oauth_mailbox_refreshes_a_refused_token_once_and_sends(
    tenant,
    contact,
    agent,
    smtp,
    oauth_server,
    oauth_providers,
    django_capture_on_commit_callbacks,
):
    mailbox = oauth_mailbox(tenant, oauth_server, oauth_providers, "microsoft", SUPPORT)
    mailbox.smtp_port, mailbox.smtp_security, mailbox.save_to_sent = smtp.starttls_port, "starttls", False
    mailbox.save()
    old_token = str(mailbox.oauth_access_token)
    assert oauth_server.expire_access_tokens(SUPPORT) >= 1  # our clock says fine, the provider says expired
    ticket = make_ticket(tenant, mailbox, contact)

    row = reply(ticket, agent, django_capture_on_commit_callbacks)

    assert row.status == "sent", (row.error_message, row.smtp_text)
    assert smtp.messages[-1].auth_user == SUPPORT
    mailbox.refresh_from_db()
    assert str(mailbox.oauth_access_token) != old_token
    assert oauth_server.introspect(str(mailbox.oauth_access_token))["active"]


def test_oauth_mailbox_whose_consent_was_revoked_fails_asking_to_reconnect(
    tenant,
    contact,
    agent,
    smtp,
    oauth_server,
    oauth_providers,
    django_capture_on_commit_callbacks,
):
    mailbox = oauth_mailbox(tenant, oauth_server, oauth_providers, "microsoft", SUPPORT)
    mailbox.smtp_port, mailbox.smtp_security = smtp.starttls_port, "starttls"
    mailbox.save()
    oauth_server.revoke_all(SUPPORT)
    row = reply(make_ticket(tenant, mailbox, contact), agent, django_capture_on_commit_callbacks)
    assert row.status == "failed"
    assert "Reconnect" in row.error_advice
    assert smtp.messages == []


@pytest.fixture
def imap_support(tenant, dovecot, smtp, rig_ca):
    """support@acme.test: SMTP on aiosmtpd, IMAP on Dovecot (for the Sent folder)."""
    from tests.outbound.conftest import smtp_mailbox_for

    password = dovecot.add_user(SUPPORT)
    return smtp_mailbox_for(
        tenant,
        smtp,
        email=SUPPORT,
        imap_host="127.0.0.1",
        imap_port=dovecot.imaps_port,
        imap_security="ssl",
        imap_username=SUPPORT,
        imap_password=password,
        folder_sent="Sent",
    )


def sent_folder_ids(dovecot) -> list[str]:
    return [
        email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"]
        for raw in dovecot.fetch_all(SUPPORT, "Sent")
    ]


def test_sent_copy_is_appended_to_dovecots_sent_folder_when_enabled(
    tenant, contact, agent, imap_support, dovecot, django_capture_on_commit_callbacks
):
    imap_support.save_to_sent = True
    imap_support.save()
    before = sent_folder_ids(dovecot)
    row = reply(make_ticket(tenant, imap_support, contact), agent, django_capture_on_commit_callbacks)
    assert row.status == "sent" and row.appended_to_sent
    after = sent_folder_ids(dovecot)
    assert after.count(row.message_id) == 1 and len(after) == len(before) + 1
    outbound.append_to_sent(row)  # a redelivered task does not copy twice
    assert sent_folder_ids(dovecot).count(row.message_id) == 1


@pytest.mark.parametrize(
    "save_to_sent,provider", [(False, Provider.OTHER), (True, Provider.GOOGLE), (True, Provider.MICROSOFT)]
)
def test_no_sent_copy_when_disabled_or_the_provider_keeps_sent_mail(
    tenant, contact, agent, imap_support, dovecot, django_capture_on_commit_callbacks, save_to_sent, provider
):
    imap_support.save_to_sent, imap_support.provider = save_to_sent, provider
    imap_support.save()
    before = sent_folder_ids(dovecot)
    row = reply(make_ticket(tenant, imap_support, contact), agent, django_capture_on_commit_callbacks)
    assert row.status == "sent" and not row.appended_to_sent
    assert sent_folder_ids(dovecot) == before
