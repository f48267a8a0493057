"""Handing one message to an SMTP server: MAIL, RCPT, DATA (pipelined when the server offers RFC 2920),
the content streamed from a file and dot-stuffed on the way, and a hook right before the final dot.

`Link` keeps one signed-in session (`mailboxes.smtp.session`) for a batch and opens a new one after the
connection broke. Refusals come out as smtplib exceptions for `smtp_errors.classify_send`; a connection
lost after the final dot is `ReplyLost` (the server may or may not have the message).
"""

from __future__ import annotations

import contextlib
import re
import smtplib
from collections.abc import Callable, Sequence
from typing import IO, Any

from mailboxes.models import Mailbox

_LINE_START_DOT = re.compile(rb"(?m)^\.")
_DATA_BUFFER = 256 * 1024


class Abandoned(Exception):
    """Our claim on the row was lost (recovery took it back) before the final dot: the mail was not completed."""


class ReplyLost(Exception):
    """The connection broke after the final dot, before the server's answer: delivery is uncertain."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}".strip())
        self.cause = cause


def _rset(conn: smtplib.SMTP) -> None:
    with contextlib.suppress(smtplib.SMTPException, OSError):
        conn.rset()


def _envelope(conn: smtplib.SMTP, sender: str, recipients: Sequence[str], options: list[str]) -> dict:
    """MAIL, each RCPT and DATA, one reply at a time; returns the refused recipients."""
    code, reply = conn.mail(sender, options)
    if code != 250:
        _after_refusal(conn, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    refused: dict[str, tuple[int, bytes]] = {}
    for recipient in recipients:
        code, reply = conn.rcpt(recipient)
        if code not in (250, 251):
            refused[recipient] = (code, reply)
        if code == 421:
            conn.close()
            raise smtplib.SMTPRecipientsRefused(refused)
    if len(refused) == len(recipients):
        _rset(conn)
        raise smtplib.SMTPRecipientsRefused(refused)
    code, reply = conn.docmd("data")
    if code != 354:
        _after_refusal(conn, code)
        raise smtplib.SMTPDataError(code, reply)
    return refused


def _envelope_pipelined(
    conn: smtplib.SMTP,
    sender: str,
    recipients: Sequence[str],
    options: list[str],
    settle_previous: Callable[[], None] | None = None,
) -> dict:
    """RFC 2920: MAIL, every RCPT and DATA in one write, then their replies in order (one round trip)."""
    suffix = (" " + " ".join(options)) if options else ""
    # The addresses were validated when the mail was queued (dot-atom@domain): no quoting needed.
    commands = [f"mail FROM:<{sender}>{suffix}\r\n"]
    commands += [f"rcpt TO:<{r}>\r\n" for r in recipients]
    commands.append("data\r\n")
    conn.send("".join(commands))
    if settle_previous is not None:
        settle_previous()  # the reply to the previous mail's final dot comes first in the stream
        _still_connected(conn)
    mail_code, mail_reply = conn.getreply()
    refused: dict[str, tuple[int, bytes]] = {}
    for recipient in recipients:
        code, reply = conn.getreply()
        if code not in (250, 251):
            refused[recipient] = (code, reply)
    data_code, data_reply = conn.getreply()
    failed = mail_code != 250 or len(refused) == len(recipients)
    if data_code == 354 and failed:
        # The server took DATA although the envelope failed: end an empty message, it is not delivered
        # because there is no valid recipient (or no sender).
        conn.send(".\r\n")
        conn.getreply()
    if mail_code != 250:
        _after_refusal(conn, mail_code)
        raise smtplib.SMTPSenderRefused(mail_code, mail_reply, sender)
    if len(refused) == len(recipients):
        _after_refusal(conn, next(iter(refused.values()))[0])
        raise smtplib.SMTPRecipientsRefused(refused)
    if data_code != 354:
        _after_refusal(conn, data_code)
        raise smtplib.SMTPDataError(data_code, data_reply)
    return refused


def _after_refusal(conn: smtplib.SMTP, code: int) -> None:
    """421 means the server is closing the connection; anything else leaves it usable after RSET."""
    if code == 421:
        conn.close()
    else:
        _rset(conn)


class PreviousBrokeLink(smtplib.SMTPServerDisconnected):
    """The connection died with the previous mail's answer, before this mail's DATA: send it on a new one."""


def _still_connected(conn: smtplib.SMTP) -> None:
    if conn.sock is None:
        raise PreviousBrokeLink("the connection broke while the previous mail was answered")


class InFlight:
    """A message whose final dot is on its way; `reply()` reads the server's answer to it."""

    def __init__(self, conn: smtplib.SMTP, refused: dict) -> None:
        self.conn = conn
        self.refused = refused

    def reply(self) -> tuple[int, str]:
        """(250, text); raises ReplyLost when the answer never comes, SMTPDataError for a refusal."""
        try:
            code, reply = self.conn.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise ReplyLost(exc) from exc
        if code != 250:
            # The transaction is over either way: no RSET (with PIPELINING the next mail's commands may
            # already be on the wire, and an RSET would be answered out of turn). 421 closes the session.
            if code == 421:
                self.conn.close()
            raise smtplib.SMTPDataError(code, reply)
        return code, _text(reply)


def transmit(
    conn: smtplib.SMTP,
    sender: str,
    recipients: Sequence[str],
    data: IO[bytes],
    size: int,
    *,
    before_final_dot: Callable[[], bool],
    settle_previous: Callable[[], None] | None = None,
) -> InFlight:
    """MAIL, RCPT, DATA and the message streamed from ``data`` (CRLF lines, dot-stuffed on the way), up to
    and including the final dot; the answer to that is read later with `InFlight.reply()`.

    Not waiting for it lets the caller build the next mail meanwhile, and with PIPELINING the next MAIL,
    RCPT and DATA travel before the answer is read: ``settle_previous`` is called exactly where the
    previous mail's answer comes in the stream. ``before_final_dot`` runs after the content; when it
    returns False the message is abandoned (the server discards an unterminated DATA). Refusals raise
    smtplib exceptions.
    """
    conn.ehlo_or_helo_if_needed()
    options = [f"SIZE={size}"] if conn.does_esmtp and conn.has_extn("size") else []
    if conn.does_esmtp and conn.has_extn("pipelining"):
        refused = _envelope_pipelined(conn, sender, recipients, options, settle_previous)
    else:
        if settle_previous is not None:
            settle_previous()
            _still_connected(conn)
        refused = _envelope(conn, sender, recipients, options)
    # The last block goes out together with the final dot (one write: no Nagle/delayed-ACK stall), so the
    # marker runs while the server still holds an unterminated message.
    held = b""
    carry = b""
    for chunk in iter(lambda: data.read(_DATA_BUFFER), b""):
        block = carry + chunk
        cut = block.rfind(b"\n") + 1
        block, carry = block[:cut], block[cut:]
        if block:
            if held:
                conn.send(held)
            held = _LINE_START_DOT.sub(b"..", block)
    if carry:
        held += _LINE_START_DOT.sub(b"..", carry) + b"\r\n"
    elif held and not held.endswith(b"\r\n"):
        held += b"\r\n"
    if not before_final_dot():
        conn.close()
        raise Abandoned()
    try:
        conn.send(held + b".\r\n")
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise ReplyLost(exc) from exc  # part of the dot may have left: we cannot know
    return InFlight(conn, refused)


class Link:
    """One SMTP session for a mailbox, opened on first use and reopened after the connection broke."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox
        self._stack: contextlib.ExitStack | None = None
        self.conn: smtplib.SMTP | None = None
        # Reads and records the answer to the last final dot; run before anything else is read.
        self.pending: Callable[[], Any] | None = None

    def settle(self) -> None:
        """Read and record the answer to the mail still in flight, if any."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending()

    def get(self) -> smtplib.SMTP:
        if self.conn is not None and self.conn.sock is None:  # broke while an answer was read
            self.close()
        if self.conn is None:
            from mailboxes import smtp

            stack = contextlib.ExitStack()
            self.conn = stack.enter_context(smtp.session(self.mailbox))
            self._stack = stack
        return self.conn

    def size_limit(self) -> int | None:
        if self.conn is None:
            return None
        value = (self.conn.esmtp_features or {}).get("size", "")
        return int(value) if value.strip().isdigit() and int(value) > 0 else None

    def usable(self) -> bool:
        return self.conn is not None and self.conn.sock is not None

    def close(self) -> None:
        self.settle()
        stack, self._stack, self.conn = self._stack, None, None
        if stack is not None:
            with contextlib.suppress(Exception):
                stack.close()


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
