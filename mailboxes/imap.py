"""IMAP sessions of a mailbox: connect to the checked address, secure, sign in (password or XOAUTH2), log out.

    with imap.session(mailbox) as client:   # an imapclient.IMAPClient, signed in
        client.select_folder("INBOX", readonly=True)

Every failure, while connecting or inside the block, comes out as a `mailboxes.errors.MailError` with a
plain-words message and advice (the original exception is its `__cause__`).
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import socket
import ssl
from collections.abc import Iterator

from imapclient import IMAPClient, SocketTimeout
from imapclient import exceptions as imap_exc
from imapclient.tls import IMAP4_TLS
from imapclient.util import to_bytes

from mailboxes import oauth
from mailboxes.errors import (
    MailError,
    NotConfigured,
    Where,
    WrongSecurityForPort,
    auth_not_enabled,
    classify_imap,
)
from mailboxes.models import Mailbox, Security
from mailboxes.netguard import resolve_checked
from mailboxes.tls import client_context, explain_no_greeting

logger = logging.getLogger(__name__)

IMAP_ERRORS = (OSError, imaplib.IMAP4.error, imap_exc.IMAPClientError, EOFError)


class _PlainIMAP4(imaplib.IMAP4):
    """imaplib over a socket to a fixed IP; `host` stays the name, so STARTTLS verifies the name."""

    def __init__(self, host: str, port: int, connect_ip: str, timeout: float | None) -> None:
        self._connect_ip = connect_ip
        self._timeout = timeout
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        return socket.create_connection((self._connect_ip, self.port), timeout or self._timeout)


class _TlsIMAP4(IMAP4_TLS):
    """Implicit TLS to a fixed IP, with SNI and certificate checked against the host name."""

    def __init__(
        self, host: str, port: int, connect_ip: str, ssl_context: ssl.SSLContext, timeout: float | None
    ):
        self._connect_ip = connect_ip
        super().__init__(host, port, ssl_context, timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        sock = socket.create_connection((self._connect_ip, self.port), timeout or self._timeout)
        try:
            return self.ssl_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


class GuardedIMAPClient(IMAPClient):
    """An IMAPClient that connects to an IP checked by netguard instead of resolving `host` again."""

    def __init__(self, host: str, port: int, *, connect_ip: str, use_ssl: bool, ssl_context, timeout):
        self._connect_ip = connect_ip  # read by _create_IMAP4, which IMAPClient.__init__ calls
        super().__init__(host, port=port, ssl=use_ssl, ssl_context=ssl_context, timeout=timeout)

    def _create_IMAP4(self):
        connect_timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            return _TlsIMAP4(self.host, self.port, self._connect_ip, self.ssl_context, connect_timeout)
        return _PlainIMAP4(self.host, self.port, self._connect_ip, connect_timeout)


def where(mailbox: Mailbox) -> Where:
    return Where(
        protocol="IMAP",
        host=mailbox.imap_host,
        port=mailbox.imap_port,
        security=mailbox.imap_security,
        provider=mailbox.provider,
        oauth=mailbox.is_oauth,
    )


def connect(mailbox: Mailbox) -> IMAPClient:
    """A connected (and, unless security is "none", encrypted) client that is not signed in yet."""
    place = where(mailbox)
    if not mailbox.imap_host:
        raise NotConfigured("No IMAP server is set for this mailbox.", "Enter the IMAP host and port.")
    ip = resolve_checked(mailbox.imap_host, mailbox.imap_port, allow_private=mailbox.allow_private_hosts)
    context = client_context(allow_self_signed=mailbox.allow_self_signed)
    timeout = SocketTimeout(connect=mailbox.connect_timeout, read=mailbox.auth_timeout)
    try:
        client = GuardedIMAPClient(
            mailbox.imap_host,
            mailbox.imap_port,
            connect_ip=ip,
            use_ssl=mailbox.imap_security == Security.SSL,
            ssl_context=context,
            timeout=timeout,
        )
    except IMAP_ERRORS as exc:
        error = classify_imap(exc, place)
        raise explain_no_greeting(
            error,
            place,
            ip=ip,
            port=mailbox.imap_port,
            security=mailbox.imap_security,
            timeout=mailbox.connect_timeout,
        ) from exc
    if mailbox.imap_security == Security.STARTTLS:
        if not client.has_capability("STARTTLS"):
            _close(client)
            raise WrongSecurityForPort(
                f"{place.server} does not offer STARTTLS.",
                "Choose SSL/TLS (usually port 993). Choose “None” only for a server on a trusted network.",
            )
        try:
            client.starttls(context)
        except IMAP_ERRORS as exc:
            _close(client)
            raise classify_imap(exc, place) from exc
    return client


def login(client: IMAPClient, mailbox: Mailbox) -> None:
    """Sign in with the mailbox's password, or with XOAUTH2 (refreshing the token once if it is refused)."""
    place = where(mailbox)
    try:
        if mailbox.is_oauth:
            if not client.has_capability("AUTH=XOAUTH2"):
                raise auth_not_enabled(place, detail="XOAUTH2 is not among the server's capabilities")
            user = mailbox.imap_username or mailbox.email
            token = oauth.access_token(mailbox)
            try:
                client.oauth2_login(user, token)
            except imap_exc.LoginError:
                logger.info("IMAP XOAUTH2 refused for mailbox %s; refreshing the token once", mailbox.pk)
                client.oauth2_login(user, oauth.access_token(mailbox, force_refresh=True))
        else:
            if client.has_capability("LOGINDISABLED"):
                raise auth_not_enabled(place, detail="the server announces LOGINDISABLED")
            username, password = mailbox.imap_login
            client.login(username, password)
    except MailError:
        raise
    except IMAP_ERRORS as exc:
        raise classify_imap(exc, place) from exc


@contextlib.contextmanager
def session(mailbox: Mailbox) -> Iterator[IMAPClient]:
    """A signed-in IMAPClient for `mailbox`; logs out afterwards. Raises MailError subclasses."""
    client = connect(mailbox)
    try:
        login(client, mailbox)
        yield client
    except MailError:
        raise
    except IMAP_ERRORS as exc:
        raise classify_imap(exc, where(mailbox)) from exc
    finally:
        _close(client)


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # already broken or closed: nothing to save
        with contextlib.suppress(Exception):
            client.shutdown()


def special_use_folders(client: IMAPClient) -> tuple[list[str], dict[str, str]]:
    """All folder names, and the special-use ones (RFC 6154) as {"sent": name, "drafts": ..., "trash": ...}."""
    names: list[str] = []
    roles: dict[str, str] = {}
    flag_roles = {b"\\sent": "sent", b"\\drafts": "drafts", b"\\trash": "trash", b"\\archive": "archive",
                  b"\\all": "all", b"\\junk": "junk"}  # fmt: skip
    for flags, _delimiter, name in client.list_folders():
        if any(to_bytes(f).lower() == b"\\noselect" for f in flags):
            continue
        names.append(name)
        for flag in flags:
            role = flag_roles.get(to_bytes(flag).lower())
            if role and role not in roles:
                roles[role] = name
    # Gmail has no \Archive; "All Mail" is where archived mail lives.
    if "archive" not in roles and "all" in roles:
        roles["archive"] = roles["all"]
    return names, roles
