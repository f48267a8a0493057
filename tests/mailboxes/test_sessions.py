"""imap.session and smtp.session against the rig's real servers: every kind of security, both sign-ins."""

from email.message import EmailMessage

import pytest

from mailboxes import imap
from mailboxes import smtp as smtp_session
from tests.mailboxes.conftest import SUPPORT, make_mailbox

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("security", ["ssl", "starttls", "none"])
def test_imap_session_signs_in_with_each_security(tenant, dovecot, rig_ca, private_ok, security):
    port = dovecot.imaps_port if security == "ssl" else dovecot.imap_port
    mailbox = make_mailbox(tenant, imap_port=port, imap_security=security)
    with imap.session(mailbox) as client:
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] >= 0
        if security != "none":
            assert client.socket().version().startswith("TLS")


@pytest.mark.parametrize("security", ["ssl", "starttls", "none"])
def test_smtp_session_sends_with_each_security(tenant, smtp, rig_ca, private_ok, security):
    port = {"ssl": smtp.tls_port, "starttls": smtp.starttls_port, "none": smtp.plain_port}[security]
    mailbox = make_mailbox(tenant, smtp_port=port, smtp_security=security)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SUPPORT, "alice@example.test", "hello"
    message.set_content("hi")
    with smtp_session.session(mailbox) as conn:
        conn.send_message(message)
    (captured,) = smtp.messages
    assert captured.auth_user == SUPPORT
    assert captured.secure is (security != "none")


def test_smtp_session_through_postfix_reaches_dovecot(tenant, postfix, dovecot, rig_ca, private_ok):
    mailbox = make_mailbox(tenant, smtp_port=postfix.submission_port, smtp_security="starttls")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SUPPORT, "bob@example.test", "via postfix"
    message.set_content("hi bob")
    with smtp_session.session(mailbox) as conn:
        conn.send_message(message)
    dovecot.wait_for_messages("bob@example.test", match=lambda raw: b"via postfix" in raw)


def test_tls_verifies_the_host_name_not_the_ip(tenant, dovecot, rig_ca, private_ok, dns):
    """loop.test resolves to 127.0.0.1, but the certificate is for localhost: the name is what TLS checks."""
    from mailboxes.errors import TlsCertificateError

    mailbox = make_mailbox(tenant, imap_host="loop.test", imap_port=dovecot.imaps_port)
    with pytest.raises(TlsCertificateError), imap.session(mailbox):
        pass
    mailbox.imap_host = "localhost"
    with imap.session(mailbox) as client:
        assert client.capabilities()
