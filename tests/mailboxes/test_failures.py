"""One test per failure class, each driving a real server into that failure; the admin gets its own words."""

import pytest

from mailboxes import connection_test, imap
from mailboxes import smtp as smtp_session
from mailboxes.errors import (
    AuthMethodNotEnabled,
    ConnectionRefused,
    ConnectTimeout,
    HostNotFound,
    MailError,
    RelayDenied,
    SenderRejected,
    TemporaryFailure,
    TlsCertificateError,
    UnsafeHost,
    WrongCredentials,
    WrongSecurityForPort,
)
from mailboxes.models import ConnectionTest, Health, OutboundEmail
from tests.mailboxes.conftest import SUPPORT, make_mailbox

pytestmark = pytest.mark.django_db


def imap_error(mailbox) -> MailError:
    with pytest.raises(MailError) as info, imap.session(mailbox):
        pass
    return info.value


def smtp_error(mailbox) -> MailError:
    with pytest.raises(MailError) as info, smtp_session.session(mailbox):
        pass
    return info.value


def run_test(mailbox) -> ConnectionTest:
    return connection_test.run(ConnectionTest.objects.create(tenant=mailbox.tenant, mailbox=mailbox))


def failed_step(test: ConnectionTest) -> dict:
    return next(s for s in test.steps if not s["ok"] and not s["skipped"])


# --- wrong credentials ---------------------------------------------------------------------------------------


def test_wrong_imap_password(tenant, dovecot, rig_ca, private_ok):
    mailbox = make_mailbox(tenant, imap_port=dovecot.imaps_port, imap_password="wrong")
    error = imap_error(mailbox)
    assert type(error) is WrongCredentials
    assert error.message == "The IMAP server did not accept the username or password."
    assert "AUTHENTICATIONFAILED" in error.detail


def test_wrong_smtp_password_with_gmail_app_password_hint(tenant, smtp, rig_ca, private_ok):
    mailbox = make_mailbox(
        tenant,
        provider="google",
        smtp_port=smtp.starttls_port,
        smtp_security="starttls",
        imap_password="wrong",
    )
    error = smtp_error(mailbox)
    assert type(error) is WrongCredentials
    assert error.smtp_code == 535
    assert "app password" in error.advice and "Connect with Google" in error.advice


def test_wrong_password_at_microsoft_points_to_smtp_auth_and_oauth(tenant, smtp, rig_ca, private_ok):
    mailbox = make_mailbox(
        tenant, provider="microsoft", smtp_port=smtp.tls_port, smtp_security="ssl", imap_password="wrong"
    )
    error = smtp_error(mailbox)
    assert type(error) is WrongCredentials
    assert "SMTP AUTH" in error.advice and "Connect with Microsoft" in error.advice


# --- sign-in method --------------------------------------------------------------------------------------------


def test_auth_method_not_enabled_when_the_server_offers_no_sign_in(tenant, postfix, rig_ca, private_ok):
    """Postfix's port 25 service has no SASL: a password cannot be used there."""
    mailbox = make_mailbox(tenant, smtp_port=postfix.smtp_port, smtp_security="starttls")
    error = smtp_error(mailbox)
    assert type(error) is AuthMethodNotEnabled
    assert (
        error.message
        == f"The SMTP server at 127.0.0.1:{postfix.smtp_port} does not allow this way of signing in."
    )


def test_auth_method_not_enabled_for_microsoft_names_smtp_auth(tenant, postfix, rig_ca, private_ok):
    mailbox = make_mailbox(
        tenant, provider="microsoft", smtp_port=postfix.smtp_port, smtp_security="starttls"
    )
    error = smtp_error(mailbox)
    assert type(error) is AuthMethodNotEnabled
    assert "SMTP AUTH" in error.advice


# --- TLS -----------------------------------------------------------------------------------------------------


def test_untrusted_certificate_fails_without_allow_self_signed(tenant, dovecot, private_ok, settings):
    settings.MAILBOX_CA_FILE = ""  # the rig's CA is not trusted: like a self-signed server on the internet
    mailbox = make_mailbox(tenant, imap_port=dovecot.imaps_port)
    error = imap_error(mailbox)
    assert type(error) is TlsCertificateError
    assert "could not be verified" in error.message and "self-signed" in error.advice

    mailbox.allow_self_signed = True
    with imap.session(mailbox) as client:
        assert client.capabilities()


def test_untrusted_certificate_on_smtp_starttls(tenant, smtp, private_ok, settings):
    settings.MAILBOX_CA_FILE = ""
    mailbox = make_mailbox(tenant, smtp_port=smtp.starttls_port, smtp_security="starttls")
    assert type(smtp_error(mailbox)) is TlsCertificateError


def test_ssl_on_a_starttls_port(tenant, dovecot, smtp, rig_ca, private_ok):
    mailbox = make_mailbox(tenant, imap_port=dovecot.imap_port, imap_security="ssl")
    error = imap_error(mailbox)
    assert type(error) is WrongSecurityForPort
    assert "Choose STARTTLS" in error.advice

    mailbox = make_mailbox(
        tenant, key="X2", email="b@acme.test", smtp_port=smtp.starttls_port, smtp_security="ssl"
    )
    assert type(smtp_error(mailbox)) is WrongSecurityForPort


def test_starttls_on_an_ssl_port_is_recognised_instead_of_a_bare_timeout(
    tenant, dovecot, smtp, rig_ca, private_ok
):
    mailbox = make_mailbox(tenant, imap_port=dovecot.imaps_port, imap_security="starttls", connect_timeout=1)
    error = imap_error(mailbox)
    assert type(error) is WrongSecurityForPort
    assert "expects SSL/TLS from the first byte" in error.advice

    mailbox = make_mailbox(
        tenant,
        key="X3",
        email="c@acme.test",
        smtp_port=smtp.tls_port,
        smtp_security="starttls",
        connect_timeout=1,
    )
    assert type(smtp_error(mailbox)) is WrongSecurityForPort


def test_starttls_required_but_not_offered(tenant, smtp, rig_ca, private_ok):
    """The rig's plain port has no TLS at all."""
    mailbox = make_mailbox(tenant, smtp_port=smtp.plain_port, smtp_security="starttls")
    error = smtp_error(mailbox)
    assert type(error) is WrongSecurityForPort
    assert "does not offer STARTTLS" in error.message


# --- reaching the server -------------------------------------------------------------------------------------


def test_connection_refused(tenant, refused_port, rig_ca, private_ok):
    mailbox = make_mailbox(tenant, imap_port=refused_port, smtp_port=refused_port)
    error = imap_error(mailbox)
    assert type(error) is ConnectionRefused
    assert f"127.0.0.1:{refused_port} refused the connection" in error.message
    assert type(smtp_error(mailbox)) is ConnectionRefused


def test_server_that_never_greets_times_out(tenant, silent_port, rig_ca, private_ok):
    mailbox = make_mailbox(
        tenant, imap_port=silent_port, imap_security="none", smtp_port=silent_port, smtp_security="none",
        connect_timeout=1,
    )  # fmt: skip
    error = imap_error(mailbox)
    assert type(error) is ConnectTimeout
    assert error.message == f"127.0.0.1:{silent_port} did not answer in time."
    assert type(smtp_error(mailbox)) is ConnectTimeout


def test_unknown_host(tenant, dns, rig_ca):
    mailbox = make_mailbox(tenant, imap_host="imap.unknown-domain.test", imap_port=993)
    error = imap_error(mailbox)
    assert type(error) is HostNotFound
    assert error.message == "The host name “imap.unknown-domain.test” could not be found."


def test_unsafe_host(tenant, dns, rig_ca, settings):
    settings.MAILBOX_ALLOW_PRIVATE_HOSTS = False
    mailbox = make_mailbox(tenant, imap_host="private.test", imap_port=993)
    error = imap_error(mailbox)
    assert type(error) is UnsafeHost
    assert "points to 10.0.0.1, a private network address" in error.message


# --- sending -----------------------------------------------------------------------------------------------


def test_sender_rejected(tenant, dovecot, smtp, rig_ca, private_ok):
    mailbox = make_mailbox(
        tenant, imap_port=dovecot.imaps_port, smtp_port=smtp.starttls_port, smtp_security="starttls"
    )
    smtp.rejected_senders.add(SUPPORT)
    test = run_test(mailbox)
    step = failed_step(test)
    assert (step["key"], step["code"]) == ("smtp_send", SenderRejected.code)
    assert step["message"] == f"127.0.0.1:{smtp.starttls_port} refused to send mail from this address."
    outbound = OutboundEmail.objects.get(pk=test.outbound_id)
    assert outbound.kind == "test" and outbound.status == "failed" and outbound.smtp_code == 550
    assert outbound.error_message == step["message"]


def test_relay_denied(tenant, dovecot, postfix, rig_ca, private_ok):
    """Postfix refuses to pass mail for another domain on to the internet without sign-in."""
    mailbox = make_mailbox(
        tenant, email="help@elsewhere.test", imap_port=dovecot.imaps_port, smtp_port=postfix.smtp_port,
        smtp_security="starttls", smtp_same_credentials=False,
    )  # fmt: skip
    test = run_test(mailbox)
    step = failed_step(test)
    assert (step["key"], step["code"]) == ("smtp_send", RelayDenied.code)
    assert "Relay access denied" in step["server_reply"]
    assert "sign in" in step["advice"]


def test_temporary_failure_is_marked_temporary(tenant, smtp, rig_ca, private_ok):
    from email.message import EmailMessage

    mailbox = make_mailbox(tenant, smtp_port=smtp.starttls_port, smtp_security="starttls")
    smtp.fail_next(451, "4.3.0 Try again later", stage="mail")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SUPPORT, "alice@example.test", "x"
    message.set_content("x")
    with pytest.raises(TemporaryFailure) as info, smtp_session.session(mailbox) as conn:
        conn.send_message(message)
    assert info.value.temporary and info.value.smtp_code == 451


# --- the connection test records it -----------------------------------------------------------------------------


def test_connection_test_records_failure_on_the_mailbox(tenant, dovecot, smtp, rig_ca, private_ok):
    mailbox = make_mailbox(
        tenant, imap_port=dovecot.imaps_port, smtp_port=smtp.starttls_port, smtp_security="starttls",
        imap_password="wrong",
    )  # fmt: skip
    test = run_test(mailbox)
    assert test.status == "failed" and test.error_code == WrongCredentials.code
    assert [s["key"] for s in test.steps if s["skipped"]] == ["imap_folders", "imap_inbox", "smtp_send"]
    mailbox.refresh_from_db()
    assert mailbox.health == Health.FAILING
    assert mailbox.last_error == "Sign in to IMAP: The IMAP server did not accept the username or password."
    assert mailbox.consecutive_failures == 1
