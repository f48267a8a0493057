"""Mail server failures in plain words: one class per kind of failure, each with a message and what to try.

IMAP, SMTP and OAuth code raise these; `classify()` turns the exceptions of socket, ssl, imaplib/imapclient and
smtplib into them, so the connection test, the poller and the sender all tell admins the same thing. The
server's own words go into `detail` (never a password or token: servers do not echo them, and we never put
them into messages).
"""

from __future__ import annotations

import errno
import imaplib
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass, replace

from imapclient import exceptions as imap_exc


class MailError(Exception):
    """A failure talking to a mail or OAuth server, explained for an admin."""

    code = "mail_error"
    default_message = "Something went wrong while talking to the mail server."
    default_advice = "Try again in a few minutes. If it keeps failing, check the server settings."
    #: True when trying again later may well work (4xx, network hiccups): the sender defers instead of failing.
    temporary = False

    def __init__(
        self,
        message: str | None = None,
        advice: str | None = None,
        *,
        detail: str = "",
        smtp_code: int | None = None,
        temporary: bool | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.advice = advice or self.default_advice
        self.detail = detail
        self.smtp_code = smtp_code
        if temporary is not None:
            self.temporary = temporary
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "advice": self.advice, "detail": self.detail}


class WrongCredentials(MailError):
    code = "wrong_credentials"
    default_message = "The server did not accept the username or password."
    default_advice = "Check the username (usually the full email address) and the password."


class AuthMethodNotEnabled(MailError):
    code = "auth_not_enabled"
    default_message = "The server does not allow this way of signing in."
    default_advice = "Ask the mail administrator to enable IMAP/SMTP sign-in for this mailbox."


class TlsCertificateError(MailError):
    code = "tls_certificate"
    default_message = "The server's security certificate could not be verified."
    default_advice = (
        "Check that the host name is exactly the one on the certificate (e.g. imap.example.com, not an IP "
        "address). If the server really uses a self-signed certificate, tick “Allow self-signed certificates”."
    )


class TlsHandshakeError(MailError):
    code = "tls_handshake"
    default_message = "A secure (TLS) connection to the server could not be set up."
    default_advice = "Check the security setting (SSL/TLS or STARTTLS) and the port."


class WrongSecurityForPort(MailError):
    code = "wrong_security"
    default_message = "The security setting does not match what the server speaks on this port."
    default_advice = "Use SSL/TLS for ports 993 and 465, and STARTTLS for ports 143 and 587."


class ConnectionRefused(MailError):
    code = "connection_refused"
    default_message = "The server refused the connection."
    default_advice = "Check the host name and port. A firewall may also block the port."
    temporary = True


class ConnectTimeout(MailError):
    code = "timeout"
    default_message = "The server did not answer in time."
    default_advice = (
        "Check the host name and port; a firewall may silently drop the connection. If the server is just slow, "
        "raise the timeout."
    )
    temporary = True


class HostNotFound(MailError):
    code = "host_not_found"
    default_message = "The server's name could not be found."
    default_advice = "Check the spelling of the host name, e.g. imap.example.com."


class UnsafeHost(MailError):
    code = "unsafe_host"
    default_message = "This server address is not allowed."
    default_advice = (
        "Mail servers must be reachable on the public internet. Servers on a private network can be allowed by "
        "the people who run this helpdesk."
    )


class NetworkError(MailError):
    code = "network"
    default_message = "The server could not be reached."
    default_advice = "Check the host name and port, then try again."
    temporary = True


class ConnectionLost(MailError):
    code = "connection_lost"
    default_message = "The server closed the connection unexpectedly."
    default_advice = "Try again in a few minutes. If it keeps happening, check the security setting and port."
    temporary = True


class SenderRejected(MailError):
    code = "sender_rejected"
    default_message = "The server refused to send mail from this address."
    default_advice = (
        "The account may only send as its own address. Check that the email address of this mailbox belongs "
        "to the account you sign in with (or that it may “send as” that address)."
    )


class RelayDenied(MailError):
    code = "relay_denied"
    default_message = "The server refused to pass the mail on (relay denied)."
    default_advice = (
        "The server usually wants you to sign in before it sends mail to other domains. Check that SMTP "
        "sign-in is set up and uses the right account."
    )


class RecipientRejected(MailError):
    code = "recipient_rejected"
    default_message = "The server refused the recipient address."
    default_advice = "Check the recipient's address for typos."


class MessageRejected(MailError):
    code = "message_rejected"
    default_message = "The server refused the message."
    default_advice = "The message may be too large or look like spam to the server. Check the server's reply."


class TemporaryFailure(MailError):
    code = "temporary"
    default_message = "The server asked to try again later."
    default_advice = "Nothing to do: it will be retried automatically."
    temporary = True


class ServerError(MailError):
    code = "server_error"
    default_message = "The mail server answered with an error."
    default_advice = "Check the server's reply below; it usually says what is wrong."


class NotConfigured(MailError):
    code = "not_configured"
    default_message = "This mailbox is not fully set up."
    default_advice = "Fill in the host, port and sign-in details."


class NeedsReconnect(MailError):
    code = "needs_reconnect"
    default_message = "The connection to this account has expired or was revoked."
    default_advice = "Click “Reconnect” and sign in to the account again."


class OAuthProviderError(MailError):
    code = "oauth_provider"
    default_message = "The sign-in service could not be reached."
    default_advice = "Try again in a few minutes."
    temporary = True


#: Every failure class, for docs and tests: code -> class.
ERROR_CLASSES: dict[str, type[MailError]] = {
    cls.code: cls
    for cls in (
        WrongCredentials,
        AuthMethodNotEnabled,
        TlsCertificateError,
        TlsHandshakeError,
        WrongSecurityForPort,
        ConnectionRefused,
        ConnectTimeout,
        HostNotFound,
        UnsafeHost,
        NetworkError,
        ConnectionLost,
        SenderRejected,
        RelayDenied,
        RecipientRejected,
        MessageRejected,
        TemporaryFailure,
        ServerError,
        NotConfigured,
        NeedsReconnect,
        OAuthProviderError,
    )
}


@dataclass(frozen=True)
class Where:
    """What we were talking to, so messages can name it and give provider-specific hints."""

    protocol: str  # "IMAP" | "SMTP"
    host: str = ""
    port: int = 0
    security: str = ""  # ssl | starttls | none
    provider: str = "other"  # microsoft | google | other
    oauth: bool = False

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}" if self.host else "the server"

    @property
    def is_gmail(self) -> bool:
        return self.provider == "google" or self.host.endswith(
            (".gmail.com", ".googlemail.com", ".google.com")
        )

    @property
    def is_microsoft(self) -> bool:
        return self.provider == "microsoft" or self.host.endswith(
            (".office365.com", ".outlook.com", ".office.com", ".hotmail.com", ".live.com")
        )


_BYTES_REPR = re.compile(r"""^b(['"])(.*)\1$""", re.S)


def server_text(value: object) -> str:
    """Server words as plain text (imaplib hands them over as the repr of bytes: "b'[AUTH...]'")."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return " ".join(server_text(v) for v in value)
    text = str(value)
    match = _BYTES_REPR.match(text)
    return match.group(2) if match else text


def mentions(text: str, *needles: str) -> bool:
    """Whether the server's words contain any of `needles` (case-insensitive)."""
    low = text.lower()
    return any(n.lower() in low for n in needles)


# --- provider hints ------------------------------------------------------------------------------------------


def wrong_credentials(where: Where, detail: str = "", smtp_code: int | None = None) -> MailError:
    """The right advice for a refused sign-in, with Gmail's and Microsoft's usual causes."""
    if where.oauth:
        if where.is_microsoft:
            return AuthMethodNotEnabled(
                f"Microsoft accepted the sign-in, but {where.protocol} refused it.",
                f"In the Microsoft 365 admin center, open this mailbox's “Email apps” settings and make sure "
                f"{'IMAP' if where.protocol == 'IMAP' else 'Authenticated SMTP (SMTP AUTH)'} is enabled. If the "
                "address is an alias or shared mailbox, sign in as a user with full access. Then click Reconnect.",
                detail=detail,
                smtp_code=smtp_code,
            )
        return WrongCredentials(
            f"The {where.protocol} server did not accept the sign-in token.",
            "Click “Reconnect” and sign in again with the account of this mailbox.",
            detail=detail,
            smtp_code=smtp_code,
        )
    if where.is_gmail:
        return WrongCredentials(
            f"Gmail did not accept the username or password ({where.protocol}).",
            "Gmail needs an app password when 2-step verification is on (Google Account → Security → App "
            "passwords); your normal password will not work. Better: use “Connect with Google” instead.",
            detail=detail,
            smtp_code=smtp_code,
        )
    if where.is_microsoft:
        return WrongCredentials(
            f"Microsoft did not accept the username or password ({where.protocol}).",
            "Microsoft 365 turns off password sign-in for IMAP and SMTP (basic authentication) and needs SMTP AUTH "
            "enabled for the mailbox. Use “Connect with Microsoft” instead.",
            detail=detail,
            smtp_code=smtp_code,
        )
    return WrongCredentials(
        f"The {where.protocol} server did not accept the username or password.",
        "Check the username (usually the full email address) and the password. Some providers need an app "
        "password instead of the normal one.",
        detail=detail,
        smtp_code=smtp_code,
    )


def auth_not_enabled(where: Where, detail: str = "", smtp_code: int | None = None) -> MailError:
    if where.is_microsoft:
        advice = (
            "Microsoft 365: enable “Authenticated SMTP” (SMTP AUTH) and IMAP for this mailbox in the Microsoft 365 "
            "admin center (Users → the user → Mail → Manage email apps), and make sure security defaults do not "
            "block it."
        )
    elif where.is_gmail:
        advice = "Gmail: make sure IMAP is enabled (Gmail settings → Forwarding and POP/IMAP)."
    elif where.oauth:
        advice = "This server does not support OAuth sign-in (XOAUTH2). Set the account up with a password instead."
    else:
        advice = (
            "Check the security setting: many servers only allow sign-in over an encrypted connection (SSL/TLS or "
            "STARTTLS). Otherwise ask the mail administrator to enable IMAP/SMTP sign-in for this account."
        )
    return AuthMethodNotEnabled(
        f"The {where.protocol} server at {where.server} does not allow this way of signing in.",
        advice,
        detail=detail,
        smtp_code=smtp_code,
    )


# --- classification ---------------------------------------------------------------------------------------

_SSL_WRONG_PROTOCOL = (
    "WRONG_VERSION_NUMBER",
    "UNKNOWN_PROTOCOL",
    "HTTP_REQUEST",
    "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG",
    "UNEXPECTED_RECORD",
)


def classify_network(exc: BaseException, where: Where) -> MailError | None:
    """Socket and TLS failures (the same for IMAP and SMTP); None when `exc` is not one of them."""
    if isinstance(exc, MailError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TlsCertificateError(
            f"The certificate of {where.server} could not be verified: {exc.verify_message or 'not trusted'}.",
            detail=server_text(exc),
        )
    if isinstance(exc, ssl.SSLError):
        reason = (getattr(exc, "reason", None) or "").upper()
        text = server_text(exc)
        if reason in _SSL_WRONG_PROTOCOL or mentions(text, *_SSL_WRONG_PROTOCOL):
            return wrong_security(where, detail=text)
        if isinstance(exc, ssl.SSLEOFError) or mentions(text, "EOF occurred", "UNEXPECTED_EOF"):
            return TlsHandshakeError(
                f"{where.server} closed the connection during the secure (TLS) handshake.",
                "Check the security setting and port: the server may not speak TLS here, or it may only accept "
                "older or newer TLS versions.",
                detail=text,
            )
        return TlsHandshakeError(
            f"A secure (TLS) connection to {where.server} could not be set up.", detail=text
        )
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionRefused(
            f"{where.server} refused the connection: nothing accepts {where.protocol} connections on that port.",
            "Check the host name and port (IMAP: usually 993, SMTP: usually 465 or 587).",
        )
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return ConnectTimeout(f"{where.server} did not answer in time.", detail=server_text(exc))
    if isinstance(exc, socket.gaierror):
        return HostNotFound(f"The host name “{where.host}” could not be found.", detail=server_text(exc))
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, EOFError)):
        return ConnectionLost(f"{where.server} closed the connection unexpectedly.", detail=server_text(exc))
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
        return NetworkError(f"{where.server} cannot be reached from here.", detail=server_text(exc))
    if isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException):
        return NetworkError(f"{where.server} could not be reached.", detail=server_text(exc))
    return None


def wrong_security(where: Where, detail: str = "") -> MailError:
    if where.security == "ssl":
        advice = (
            f"The server does not start with SSL/TLS on port {where.port}. Choose STARTTLS (usual on ports 143 and "
            "587), or use the SSL/TLS port (993 for IMAP, 465 for SMTP)."
        )
    else:
        advice = (
            f"The server on port {where.port} expects SSL/TLS from the first byte. Choose SSL/TLS (usual on ports "
            "993 and 465)."
        )
    return WrongSecurityForPort(
        f"The security setting does not match what {where.server} speaks.", advice, detail=detail
    )


def classify_imap(exc: BaseException, where: Where) -> MailError:
    """Any exception from connecting to or talking with an IMAP server, as a MailError."""
    network = classify_network(exc, where)
    if network is not None:
        return network
    text = server_text(exc.args[0] if getattr(exc, "args", None) else exc)
    if isinstance(exc, imap_exc.LoginError) or mentions(text, "AUTHENTICATIONFAILED", "AUTHENTICATE failed"):
        if mentions(text, "PRIVACYREQUIRED", "Plaintext authentication disallowed", "LOGINDISABLED"):
            return auth_not_enabled(where, detail=text)
        if mentions(
            text, "Unsupported authentication mechanism", "not supported", "NO mechanism", "UNAVAILABLE"
        ):
            return auth_not_enabled(where, detail=text)
        return wrong_credentials(where, detail=text)
    if mentions(text, "LOGINDISABLED", "PRIVACYREQUIRED"):
        return auth_not_enabled(where, detail=text)
    if mentions(text, "TLS not supported by server", "STARTTLS"):
        return WrongSecurityForPort(
            f"{where.server} does not offer STARTTLS.",
            "Choose SSL/TLS (port 993) if the server supports it. Only choose “None” on a trusted network.",
            detail=text,
        )
    if isinstance(exc, (imaplib.IMAP4.abort, imap_exc.IMAPClientAbortError)):
        return ConnectionLost(f"{where.server} closed the IMAP connection unexpectedly.", detail=text)
    if mentions(text, "UNAVAILABLE", "[INUSE]", "try again"):
        return TemporaryFailure(f"The IMAP server {where.server} is temporarily unavailable.", detail=text)
    return ServerError(f"The IMAP server {where.server} answered with an error.", detail=text)


def smtp_reply(exc: BaseException) -> tuple[int | None, str, str]:
    """(code, text, refused address) of an smtplib exception: the first refused recipient when all were
    refused, the sender for a refused sender; (None, the exception's text, "") when there is no reply code."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        for address, (code, msg) in exc.recipients.items():
            return code, server_text(msg), address
        return None, "", ""
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return exc.smtp_code, server_text(exc.smtp_error), server_text(exc.sender)
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code, server_text(exc.smtp_error), ""
    return None, server_text(exc), ""


def classify_smtp(exc: BaseException, where: Where) -> MailError:
    """Any exception from connecting to or talking with an SMTP server, as a MailError."""
    network = classify_network(exc, where)
    if network is not None:
        return network
    code, text, _address = smtp_reply(exc)
    detail = f"{code} {text}".strip() if code else text
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        if mentions(text, "STARTTLS"):
            return WrongSecurityForPort(
                f"{where.server} does not offer STARTTLS.",
                "Choose SSL/TLS (port 465) if the server supports it. Only choose “None” on a trusted network.",
                detail=detail,
            )
        return auth_not_enabled(where, detail=detail)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        # smtplib turns a read timeout into "Connection unexpectedly closed: timed out".
        if isinstance(exc.__context__, TimeoutError) or mentions(text, "timed out"):
            return ConnectTimeout(f"{where.server} did not answer in time.", detail=detail)
        return ConnectionLost(f"{where.server} closed the SMTP connection unexpectedly.", detail=detail)
    if mentions(text, "No suitable authentication method"):
        return auth_not_enabled(where, detail=detail)
    if isinstance(exc, smtplib.SMTPAuthenticationError) or (code == 535):
        if mentions(
            text, "SmtpClientAuthentication is disabled", "5.7.139", "basic authentication is disabled"
        ):
            return auth_not_enabled(where, detail=detail, smtp_code=code)
        if code in (502, 504) or mentions(
            text, "Unrecognized authentication type", "mechanism not supported"
        ):
            return auth_not_enabled(where, detail=detail, smtp_code=code)
        if code == 534 and mentions(text, "Application-specific password", "5.7.9"):
            return wrong_credentials(replace(where, provider="google"), detail, code)
        if code == 530 and mentions(text, "STARTTLS", "TLS"):
            return auth_not_enabled(where, detail=detail, smtp_code=code)
        if code is not None and 400 <= code < 500:
            return TemporaryFailure(
                f"The SMTP server {where.server} could not check the sign-in right now.",
                detail=detail,
                smtp_code=code,
            )
        return wrong_credentials(where, detail=detail, smtp_code=code)
    # Relay and sender refusals arrive at MAIL FROM, at RCPT TO (Postfix delays sender checks) or after DATA.
    if mentions(text, "relay access denied", "relaying denied", "relay not permitted", "not permitted to relay",
            "unable to relay", "Client host rejected", "relay denied"):  # fmt: skip
        return RelayDenied(
            f"{where.server} refused to relay the mail.",
            detail=detail,
            smtp_code=code,
            temporary=is_4xx(code),
        )
    sender_words = mentions(
        text, "Sender address rejected", "not owned by user", "SendAsDenied", "5.7.60", "sender rejected",
        "not authorized to send", "sender not allowed",
    )  # fmt: skip
    if sender_words or (isinstance(exc, smtplib.SMTPSenderRefused) and not is_4xx(code)):
        return SenderRejected(
            f"{where.server} refused to send mail from this address.",
            detail=detail,
            smtp_code=code,
            temporary=is_4xx(code),
        )
    if is_4xx(code):
        return TemporaryFailure(
            f"{where.server} asked to try again later.", detail=detail, smtp_code=code, temporary=True
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return RecipientRejected(f"{where.server} refused the recipient.", detail=detail, smtp_code=code)
    if isinstance(exc, smtplib.SMTPDataError):
        return MessageRejected(f"{where.server} refused the message.", detail=detail, smtp_code=code)
    if isinstance(exc, smtplib.SMTPConnectError):
        return ServerError(f"{where.server} did not accept the connection.", detail=detail, smtp_code=code)
    return ServerError(
        f"The SMTP server {where.server} answered with an error.", detail=detail, smtp_code=code
    )


def is_4xx(code: int | None) -> bool:
    """A "try again later" reply code."""
    return code is not None and 400 <= code < 500
