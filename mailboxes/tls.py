"""TLS for IMAP and SMTP connections: a verifying client context, and a probe that tells whether a port
expects TLS from the first byte (to explain "wrong security for this port" instead of a bare timeout)."""

from __future__ import annotations

import contextlib
import socket
import ssl

from django.conf import settings

from mailboxes.errors import ConnectionLost, ConnectTimeout, MailError, Where, wrong_security


def client_context(*, allow_self_signed: bool = False) -> ssl.SSLContext:
    """Verify certificate and host name (system CAs plus MAILBOX_CA_FILE), unless the admin allowed self-signed."""
    context = ssl.create_default_context()
    if settings.MAILBOX_CA_FILE:
        context.load_verify_locations(cafile=settings.MAILBOX_CA_FILE)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if allow_self_signed:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def speaks_implicit_tls(ip: str, port: int, *, timeout: float) -> bool:
    """True when a TLS handshake succeeds on ip:port right after connecting (an SSL/TLS port)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only asking "is this TLS?", nothing is sent over it
    try:
        with (
            socket.create_connection((ip, port), timeout=timeout) as raw,
            context.wrap_socket(raw) as tls,
        ):
            tls.version()
            return True
    except (OSError, ssl.SSLError):
        return False


def explain_no_greeting(
    error: MailError, where: Where, *, ip: str, port: int, security: str, timeout: float
) -> MailError:
    """A server that never greets may expect TLS first (993/465): say so instead of a bare timeout."""
    if (
        isinstance(error, (ConnectTimeout, ConnectionLost))
        and security != "ssl"
        and speaks_implicit_tls(ip, port, timeout=min(5, timeout))
    ):
        return wrong_security(where, detail=error.detail)
    return error


def close_quietly(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()
