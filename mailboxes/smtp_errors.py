"""Why a mail could not be sent, in plain words: the sender's additions to `mailboxes.errors`.

`errors.classify_smtp` explains connection and sign-in failures; sending adds replies that only come up
with a real message (too large, mailbox full, spam policy, rate limits, unknown recipients) and failures of
our own (no recipient, an attachment missing from storage, a crash after DATA). `classify_send` checks these
first and hands everything else to `errors.classify_smtp`.
"""

from __future__ import annotations

import re
import smtplib

from mailboxes import errors
from mailboxes.errors import (
    MailError,
    MessageRejected,
    RecipientRejected,
    TemporaryFailure,
    Where,
    is_4xx,
    mentions,
    smtp_reply,
)


class NoRecipient(MailError):
    code = "no_recipient"
    default_message = "The mail has no recipient."
    default_advice = "Add at least one address in To, Cc or Bcc."


class InvalidAddress(MailError):
    code = "invalid_address"
    default_message = "An address is not a valid email address."
    default_advice = "Check the address for typos, e.g. name@example.com."


class MessageTooLarge(MessageRejected):
    code = "too_large"
    default_message = "The message is larger than the server accepts."
    default_advice = "Send fewer or smaller attachments, or share large files as a link."


class MailboxFull(MailError):
    code = "mailbox_full"
    default_message = "The recipient's mailbox is full."
    default_advice = "Ask the recipient to make room, or reach them another way."


class ContentRejected(MessageRejected):
    code = "content_rejected"
    default_message = "The server did not accept the message content (spam or content policy)."
    default_advice = (
        "Remove links or attachments that may look suspicious and try again. If it keeps happening, ask the "
        "mail provider why the message was refused (the server's reply is below)."
    )


class RateLimited(TemporaryFailure):
    code = "rate_limited"
    default_message = "The mail provider is limiting how much this mailbox may send."
    default_advice = "Nothing to do: it will be retried automatically when the provider allows it again."
    temporary = True


class AttachmentMissing(MailError):
    code = "attachment_missing"
    default_message = "An attachment could not be found in storage."
    default_advice = "Send the reply again with the file attached. If files keep disappearing, tell the people who run the helpdesk."


class RetriesExhausted(MailError):
    code = "retries_exhausted"
    default_message = "The mail could not be sent for 24 hours and was given up."
    default_advice = "Check the last server reply below, fix the cause, then click “Retry now”."


class DeliveryUncertain(MailError):
    code = "uncertain"
    default_message = (
        "The connection broke after the message was handed to the server: it may or may not have arrived."
    )
    default_advice = (
        "Check with the recipient (or the Sent folder) before sending it again, so they do not get it twice."
    )


class SendingLimitReached(TemporaryFailure):
    code = "send_limit"
    default_message = "The workspace's sending limit is reached."
    default_advice = "Nothing to do: the mail waits and goes out as soon as the limit allows."
    temporary = True


SEND_ERROR_CLASSES: dict[str, type[MailError]] = {
    cls.code: cls
    for cls in (
        NoRecipient,
        InvalidAddress,
        MessageTooLarge,
        MailboxFull,
        ContentRejected,
        RateLimited,
        AttachmentMissing,
        RetriesExhausted,
        DeliveryUncertain,
        SendingLimitReached,
    )
}

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SIZE_NUMBERS = re.compile(r"(\d{4,})")


def _size(n: int) -> str:
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}".replace(".0 ", " ")
    return f"{n} bytes"


def too_large(code: int | None, text: str, limit: int | None, size: int | None) -> MessageTooLarge:
    """A size refusal naming the server's limit when it states one (in its reply or in EHLO SIZE)."""
    numbers = [int(n) for n in _SIZE_NUMBERS.findall(text)]
    if numbers and not limit:
        limit = min(numbers) if len(numbers) > 1 else numbers[0]
    message = "The message is larger than the server accepts"
    if limit:
        message += f" (its limit is {_size(limit)}"
        message += f", this message is {_size(size)})." if size else ")."
    else:
        message += "."
    detail = f"{code} {text}".strip() if code else text
    return MessageTooLarge(message, detail=detail, smtp_code=code)


def classify_send(
    exc: BaseException, where: Where, *, size_limit: int | None = None, size: int | None = None
) -> MailError:
    """Any exception raised while sending one message, as a MailError with a message and advice."""
    if isinstance(exc, MailError):
        return exc
    code, text, address = smtp_reply(exc)
    if code is None:
        return errors.classify_smtp(exc, where)
    detail = f"{code} {text}".strip()
    enhanced = _ENHANCED.search(text)
    status = enhanced.group(0) if enhanced else ""
    temporary = is_4xx(code)
    who = f" {address}" if address and isinstance(exc, smtplib.SMTPRecipientsRefused) else ""
    if (
        code == 552 and status in ("", "5.3.4") and mentions(text, "size", "too large", "exceed")
    ) or status == "5.3.4":
        return too_large(code, text, size_limit, size)
    if status in ("5.2.2", "4.2.2") or mentions(
        text, "mailbox full", "over quota", "quota exceeded", "insufficient storage for"
    ):
        return MailboxFull(
            f"The mailbox of{who or ' the recipient'} is full.",
            detail=detail,
            smtp_code=code,
            temporary=temporary,
        )
    if mentions(
        text,
        "rate limit",
        "too many messages",
        "too many recipients",
        "sending quota",
        "4.7.28",
        "5.4.5",
        "throttl",
    ):
        return RateLimited(
            f"{where.server} is limiting how much this mailbox may send.",
            detail=detail,
            smtp_code=code,
            temporary=True,
        )
    if temporary:
        return TemporaryFailure(f"{where.server} asked to try again later.", detail=detail, smtp_code=code)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        if status.startswith("5.1.") or mentions(
            text, "user unknown", "does not exist", "no such user", "unknown"
        ):
            return RecipientRejected(
                f"The address{who} does not exist (the server does not know it).",
                "Check the address for typos, or ask the person for their current address.",
                detail=detail,
                smtp_code=code,
            )
        if not mentions(text, "relay", "client host"):
            return RecipientRejected(f"The server refused the recipient{who}.", detail=detail, smtp_code=code)
    if isinstance(exc, smtplib.SMTPDataError) and (
        status.startswith("5.7.")
        or code == 554
        or mentions(text, "spam", "policy", "content", "blocked", "virus")
    ):
        return ContentRejected(detail=detail, smtp_code=code)
    return errors.classify_smtp(exc, where)


def where_for(mailbox) -> Where:
    """What we talk to when sending through this mailbox."""
    return Where(
        protocol="SMTP",
        host=mailbox.smtp_host,
        port=mailbox.smtp_port,
        security=mailbox.smtp_security,
        provider=mailbox.provider,
        oauth=mailbox.is_oauth,
    )
