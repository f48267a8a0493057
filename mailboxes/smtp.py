"""SMTP sessions of a mailbox: connect to the checked address, secure, sign in (password or XOAUTH2), quit.

    with smtp.session(mailbox) as conn:   # an smtplib.SMTP, signed in and ready for sendmail/send_message
        conn.send_message(message)

Every failure, while connecting or inside the block, comes out as a `mailboxes.errors.MailError` (with
`smtp_code` and `temporary` for the sender's retry decision; the original exception is its `__cause__`).
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import ssl
from collections.abc import Iterator

from django.conf import settings

from mailboxes import oauth
from mailboxes.errors import (
    MailError,
    NotConfigured,
    Where,
    WrongSecurityForPort,
    auth_not_enabled,
    classify_smtp,
)
from mailboxes.models import Mailbox, Security
from mailboxes.netguard import resolve_checked
from mailboxes.tls import client_context, explain_no_greeting

logger = logging.getLogger(__name__)

SMTP_ERRORS = (OSError, smtplib.SMTPException, EOFError)


def where(mailbox: Mailbox) -> Where:
    return Where(
        protocol="SMTP",
        host=mailbox.smtp_host,
        port=mailbox.smtp_port,
        security=mailbox.smtp_security,
        provider=mailbox.provider,
        oauth=mailbox.is_oauth,
    )


def _open(mailbox: Mailbox, ip: str, context: ssl.SSLContext) -> smtplib.SMTP:
    """Connect to `ip` while smtplib keeps the host *name* for SNI and certificate checks (its `_host`)."""
    cls = smtplib.SMTP_SSL if mailbox.smtp_security == Security.SSL else smtplib.SMTP
    kwargs = {"context": context} if cls is smtplib.SMTP_SSL else {}
    conn = cls(local_hostname=settings.MAILBOX_EHLO_HOSTNAME, timeout=mailbox.connect_timeout, **kwargs)
    conn._host = mailbox.smtp_host  # what starttls()/SMTP_SSL pass as server_hostname
    try:
        code, reply = conn.connect(ip, mailbox.smtp_port)
    except BaseException:
        conn.close()
        raise
    if code != 220:
        conn.close()
        raise smtplib.SMTPConnectError(code, reply)
    if conn.sock is not None:
        conn.sock.settimeout(mailbox.auth_timeout)
    conn.timeout = mailbox.auth_timeout
    return conn


def connect(mailbox: Mailbox) -> smtplib.SMTP:
    """A connected, greeted (EHLO) and, unless security is "none", encrypted connection; not signed in."""
    place = where(mailbox)
    if not mailbox.smtp_host:
        raise NotConfigured("No SMTP server is set for this mailbox.", "Enter the SMTP host and port.")
    ip = resolve_checked(mailbox.smtp_host, mailbox.smtp_port, allow_private=mailbox.allow_private_hosts)
    context = client_context(allow_self_signed=mailbox.allow_self_signed)
    try:
        conn = _open(mailbox, ip, context)
    except SMTP_ERRORS as exc:
        error = classify_smtp(exc, place)
        raise explain_no_greeting(
            error,
            place,
            ip=ip,
            port=mailbox.smtp_port,
            security=mailbox.smtp_security,
            timeout=mailbox.connect_timeout,
        ) from exc
    try:
        conn.ehlo()
        if mailbox.smtp_security == Security.STARTTLS:
            if not conn.has_extn("starttls"):
                raise WrongSecurityForPort(
                    f"{place.server} does not offer STARTTLS.",
                    "Choose SSL/TLS (usually port 465). Choose “None” only for a server on a trusted network.",
                )
            conn.starttls(context=context)
            conn.ehlo()  # RFC 3207: forget what was learnt before TLS; AUTH is often offered only now
    except MailError:
        _close(conn)
        raise
    except SMTP_ERRORS as exc:
        _close(conn)
        raise classify_smtp(exc, place) from exc
    return conn


def xoauth2_auth(user: str, token: str):
    """An smtplib auth object for XOAUTH2: the initial response, then an empty answer to an error challenge."""

    def respond(challenge: bytes | None = None) -> str:
        return oauth.xoauth2_string(user, token) if challenge is None else ""

    return respond


def login(conn: smtplib.SMTP, mailbox: Mailbox) -> None:
    """Sign in with the password, or XOAUTH2 (refreshing the token once after a 535)."""
    place = where(mailbox)
    try:
        if mailbox.is_oauth:
            mechanisms = conn.esmtp_features.get("auth", "").upper().split()
            if "XOAUTH2" not in mechanisms:
                raise auth_not_enabled(place, detail=f"AUTH offers: {' '.join(mechanisms) or 'nothing'}")
            user = mailbox.smtp_username or mailbox.imap_username or mailbox.email
            try:
                conn.auth("XOAUTH2", xoauth2_auth(user, oauth.access_token(mailbox)))
            except smtplib.SMTPAuthenticationError as exc:
                if exc.smtp_code != 535:
                    raise
                logger.info("SMTP XOAUTH2 refused for mailbox %s; refreshing the token once", mailbox.pk)
                token = oauth.access_token(mailbox, force_refresh=True)
                conn.auth("XOAUTH2", xoauth2_auth(user, token))
            return
        username, password = mailbox.smtp_login
        if not password:
            return  # a relay that trusts our address; nothing to sign in with
        conn.login(username, password)
    except MailError:
        raise
    except SMTP_ERRORS as exc:
        raise classify_smtp(exc, place) from exc


@contextlib.contextmanager
def session(mailbox: Mailbox) -> Iterator[smtplib.SMTP]:
    """A signed-in SMTP connection for `mailbox`; QUIT afterwards. Raises MailError subclasses."""
    conn = connect(mailbox)
    try:
        login(conn, mailbox)
        yield conn
    except MailError:
        raise
    except SMTP_ERRORS as exc:
        raise classify_smtp(exc, where(mailbox)) from exc
    finally:
        _close(conn)


def _close(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except (OSError, smtplib.SMTPException):
        with contextlib.suppress(OSError):
            conn.close()
