"""Mail written by machines: bounces, out-of-office replies, notifications, receipts, spam flags.

Pure functions over a `ParsedMail`, no Django, no I/O. The helpdesk never auto-replies to what
`classify` calls automatic (RFC 3834), and files a bounce under the ticket of the message that
bounced (`parse_bounce`).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

from mailboxes.parsing import AttachmentKind, ParsedMail, decode_bytes, parse_message_ids

__all__ = [
    "AutoKind",
    "Automatic",
    "Bounce",
    "SpamVerdict",
    "classify",
    "is_noreply_address",
    "parse_bounce",
    "spam_verdict",
]


class AutoKind(enum.StrEnum):
    # NONE is the empty string on purpose: `if classify(mail).kind:` reads "if automatic".
    NONE = ""
    AUTO_REPLY = "auto_reply"  # out-of-office, vacation, "we received your message"
    BOUNCE = "bounce"  # a delivery failure or delay report
    AUTO_GENERATED = "auto_generated"  # notifications, bulk, junk and mailing-list mail
    MDN = "mdn"  # a read receipt
    FEEDBACK_REPORT = "feedback_report"  # an ARF abuse / spam complaint


@dataclass(frozen=True, slots=True)
class Automatic:
    kind: AutoKind
    reason: str  # plain words, shown in the processing trace

    def __bool__(self) -> bool:
        return bool(self.kind)


NOT_AUTOMATIC = Automatic(AutoKind.NONE, "")

_REPORT_KINDS = {
    "delivery-status": AutoKind.BOUNCE,
    "global-delivery-status": AutoKind.BOUNCE,
    "disposition-notification": AutoKind.MDN,
    "global-disposition-notification": AutoKind.MDN,
    "feedback-report": AutoKind.FEEDBACK_REPORT,
}

_REPORT_REASONS = {
    AutoKind.BOUNCE: "a delivery status report (RFC 3464)",
    AutoKind.MDN: "a read receipt (message disposition notification, RFC 8098)",
    AutoKind.FEEDBACK_REPORT: "an abuse/spam feedback report (ARF, RFC 5965)",
}
# Subject prefixes only machines write. Anchored at the start, so "Re:"/"Fwd:" of one (a person
# answering or forwarding it) is not caught; words a person might use ("Absence") are left out.
_AUTO_REPLY_SUBJECT = re.compile(
    r"""^\s*(?:
        automatic\s+reply | auto[\s-]?reply | auto[\s-]?respon[sd]e? | out\s+of\s+(?:the\s+)?office
        | automatische\s+antwort | abwesenheitsnotiz | automatische\s+abwesenheitsnotiz
        | r[ée]ponse\s+automatique | message\s+d'absence | respuesta\s+autom[áa]tica
        | fuera\s+de\s+la\s+oficina | resposta\s+autom[áa]tica | risposta\s+automatica
        | automatisch\s+antwoord | automatyczna\s+odpowied[źz] | automatiskt\s+svar
        | automatisk\s+svar | autosvar | automaattinen\s+vastaus | automatick[áa]\s+odpov[ěe][ďd]
        | автоматический\s+ответ | автоответ | otomatik\s+(?:yan[\u0131i]t|cevap)
        | 自動応答 | 自動返信 | 自动回复 | 自動回覆 | 자동\s*응답
    )\s*(?:[:\uff1a]|$)""",
    re.I | re.X,
)
_BOUNCE_SUBJECT = re.compile(
    r"""^\s*(?:
        undeliverable\s*(?::|mail\b|message\b) | undelivered\s+mail\s+returned\s+to\s+sender
        | undelivered\s+message | delivery\s+status\s+notification | delivery\s+notification\s*:
        | delivery\s+has\s+failed | delivery\s+failure\s*(?:[:(]|$)
        | mail\s+delivery\s+(?:failed|failure|system|subsystem) | mail\s+system\s+error
        | returned\s+mail\s*: | failure\s+notice\s*$ | message\s+not\s+delivered\s*(?::|$)
        | non[\s-]?deliver(?:able|y)\s+(?:mail|message|report|notification)
        | warning:\s+could\s+not\s+send\s+message
        | (?:unzustellbar | nicht\s+zustellbar | non\s+remis | non\s+distribuable
           | no\s+se\s+puede\s+entregar | onbestelbaar | non\s+recapitabile
           | не\s+удается\s+доставить)\s*:
        | benachrichtig?ung\s+zum\s+[üu]bermittlungsstatus
        | notificaci[óo]n\s+de\s+estado\s+de\s+entrega | недоставленное\s+сообщение
    )""",
    re.I | re.X,
)
_MDN_SUBJECT = re.compile(
    r"""^\s*(?:read | not\s+read | gelesen | ungelesen | lu | non\s+lu | le[íi]do | no\s+le[íi]do
        | letto | non\s+letto | gelezen | niet\s+gelezen | l[äæ]st | luettu | přečteno | прочитано
    )\s*:""",
    re.I | re.X,
)
_NOREPLY_LOCAL = re.compile(
    r"""^(?:.*[._+=-])?(?:no[._-]?reply | do[._-]?not[._-]?reply | dont[._-]?reply
        | mailer[._-]?daemon | postmaster | bounces?)(?:[._+=-].*|\d*)$""",
    re.I | re.X,
)
_DAEMON_LOCAL = re.compile(r"^(?:mailer[._-]?daemon|postmaster|mail[._-]?delivery[._-]?system)$", re.I)


def is_noreply_address(address: str | None) -> bool:
    """True for addresses nobody reads: no-reply, do-not-reply, mailer-daemon, postmaster, bounces."""
    if not address:
        return False
    local = address.strip().strip("<>").rpartition("@")[0] or address.strip().strip("<>")
    return bool(_NOREPLY_LOCAL.match(local.strip('"')))


def _header(parsed: ParsedMail, name: str) -> str:
    return (parsed.headers.get(name) or "").strip()


def _sender_local(parsed: ParsedMail) -> str:
    address = parsed.from_addr.address if parsed.from_addr else ""
    return (address.rpartition("@")[0] or address).strip('"')


def _report_kind(parsed: ParsedMail) -> AutoKind | None:
    if parsed.report_type in _REPORT_KINDS:
        return _REPORT_KINDS[parsed.report_type]
    for attachment in parsed.attachments:  # a report part without (or outside) multipart/report
        subtype = attachment.content_type.partition("/")[2]
        if attachment.content_type.startswith("message/") and subtype in _REPORT_KINDS:
            return _REPORT_KINDS[subtype]
    return None


def classify(parsed: ParsedMail) -> Automatic:
    """Whether a machine wrote this mail, which kind, and why.

    Precedence: list (a mailing-list post) counts as auto_generated: it went to many people at
    once, so the helpdesk must not auto-acknowledge it; it is still filed like any other mail.
    """
    subject = parsed.subject
    report = _report_kind(parsed)
    if report is not None:
        return Automatic(report, _REPORT_REASONS[report])
    if _header(parsed, "x-failed-recipients"):
        return Automatic(AutoKind.BOUNCE, "X-Failed-Recipients names recipients that failed")
    daemon = bool(_DAEMON_LOCAL.match(_sender_local(parsed)))
    if _BOUNCE_SUBJECT.match(subject):
        return Automatic(AutoKind.BOUNCE, f"delivery-failure subject: {subject[:80]}")
    if _MDN_SUBJECT.match(subject) and (
        parsed.content_type in ("application/ms-tnef", "application/vnd.ms-tnef")
        or "mdn" in _header(parsed, "content-class").lower()
    ):
        return Automatic(AutoKind.MDN, f"Outlook read receipt: {subject[:80]}")
    if daemon:
        returned = any(a.kind is AttachmentKind.MESSAGE for a in parsed.attachments)
        if returned or _header(parsed, "return-path").replace(" ", "") == "<>":
            return Automatic(AutoKind.BOUNCE, f"returned by the mail system ({parsed.from_addr.address})")
        return Automatic(AutoKind.AUTO_GENERATED, f"sent by the mail system ({parsed.from_addr.address})")

    auto_submitted = _header(parsed, "auto-submitted").lower()
    value = re.split(r"[;(\s]", auto_submitted, maxsplit=1)[0]
    if value and value != "no":
        if value == "auto-replied" or _AUTO_REPLY_SUBJECT.match(subject):
            return Automatic(AutoKind.AUTO_REPLY, f"Auto-Submitted: {auto_submitted}")
        return Automatic(AutoKind.AUTO_GENERATED, f"Auto-Submitted: {auto_submitted}")
    for name in ("x-autoreply", "x-autorespond"):
        flag = _header(parsed, name).lower()
        if flag and flag not in ("no", "false", "0"):
            return Automatic(AutoKind.AUTO_REPLY, f"{name}: {flag}")
    if _AUTO_REPLY_SUBJECT.match(subject):
        return Automatic(AutoKind.AUTO_REPLY, f"auto-reply subject: {subject[:80]}")
    suppress = {word.strip().lower() for word in _header(parsed, "x-auto-response-suppress").split(",")}
    if suppress & {"all", "oof", "autoreply"}:
        return Automatic(
            AutoKind.AUTO_GENERATED, "X-Auto-Response-Suppress: the sender asks for no auto-replies"
        )
    precedence = (_header(parsed, "precedence") or _header(parsed, "x-precedence")).lower()
    if precedence in ("bulk", "junk", "list"):
        return Automatic(AutoKind.AUTO_GENERATED, f"Precedence: {precedence}")
    for name in ("list-id", "list-unsubscribe"):
        if _header(parsed, name):
            return Automatic(AutoKind.AUTO_GENERATED, f"mailing list or newsletter ({name})")
    if _header(parsed, "return-path").replace(" ", "") == "<>":
        return Automatic(
            AutoKind.AUTO_GENERATED, "empty Return-Path: only automatic mail has no return address"
        )
    if _header(parsed, "x-ms-exchange-generated-message-source"):
        return Automatic(AutoKind.AUTO_GENERATED, "generated by an Exchange agent")
    if parsed.from_addr and is_noreply_address(parsed.from_addr.address):
        return Automatic(AutoKind.AUTO_GENERATED, f"no-reply sender ({parsed.from_addr.address})")
    return NOT_AUTOMATIC


# --- bounces -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bounce:
    original_message_id: str | None  # the Message-ID of our mail that bounced, "<id>" form
    recipients: tuple[str, ...]
    action: str | None  # failed | delayed | delivered | relayed | expanded
    status: str | None  # enhanced status code, e.g. "5.1.1"
    diagnostic: str | None  # the remote server's words

    @property
    def recipient(self) -> str:
        return self.recipients[0] if self.recipients else ""

    @property
    def is_permanent(self) -> bool:
        return self.action == "failed" or (self.status or "").startswith("5")


_FIELD_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)[ \t]*:[ \t]*(.*)$")
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_SMTP_REPLY = re.compile(r"\b[45]\d\d[ -](?:[245]\.\d{1,3}\.\d{1,3}\b)?.{4,}")
_MESSAGE_ID_LINE = re.compile(r"^\s*message-id\s*:\s*(<[^<>\s]+>|\S+@\S+)", re.I | re.M)


def _dsn_blocks(text: str) -> list[dict[str, str]]:
    """Field blocks of a message/delivery-status body (per-message, then per-recipient)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, ""
        elif line[:1] in " \t" and last:
            current[last] += " " + line.strip()
        elif match := _FIELD_LINE.match(line):
            last = match.group(1).lower()
            current.setdefault(last, match.group(2).strip())
    if current:
        blocks.append(current)
    return blocks


def _typed_value(value: str) -> str:
    """ "rfc822; user@example.com" -> "user@example.com"."""
    return value.partition(";")[2].strip() if ";" in value else value.strip()


def _original_message_id(parsed: ParsedMail) -> str | None:
    returned = [
        a
        for a in parsed.attachments
        if a.kind is AttachmentKind.MESSAGE or a.content_type.endswith("/rfc822-headers")
    ]
    for attachment in returned:
        headers = BytesHeaderParser(policy=compat32).parsebytes(attachment.payload[:262_144])
        ids = parse_message_ids(str(value) for value in headers.get_all("message-id") or [])
        if ids:
            return ids[0]
    # Returned headers that ended up as text: a broken returned part, or quoted in the report.
    texts = [decode_bytes(a.payload[:65_536], "utf-8") for a in returned] + [parsed.text_body]
    for text in texts:
        match = _MESSAGE_ID_LINE.search(text)
        ids = parse_message_ids([match.group(1)]) if match else ()
        if ids and ids[0] != parsed.message_id:
            return ids[0]
    if parsed.in_reply_to:  # some servers thread the report under the original
        return parsed.in_reply_to[0]
    return None


def parse_bounce(parsed: ParsedMail) -> Bounce | None:
    """What bounced and why, for a mail `classify` calls a bounce; None for anything else."""
    if classify(parsed).kind is not AutoKind.BOUNCE:
        return None
    recipients: list[str] = []
    action = status = diagnostic = None
    for attachment in parsed.attachments:
        if attachment.content_type not in ("message/delivery-status", "message/global-delivery-status"):
            continue
        for block in _dsn_blocks(decode_bytes(attachment.payload, "utf-8")):
            recipient = _typed_value(block.get("final-recipient") or block.get("original-recipient") or "")
            if not recipient:
                continue
            if recipient not in recipients:
                recipients.append(recipient)
            block_action = (block.get("action") or "").lower() or None
            if action is None or (block_action == "failed" and action != "failed"):
                action = block_action
                status = (_STATUS.search(block.get("status") or "") or [None, None])[1]
                diagnostic = _typed_value(block.get("diagnostic-code") or "") or diagnostic
    for address in _header(parsed, "x-failed-recipients").split(","):
        if address.strip() and address.strip() not in recipients:
            recipients.append(address.strip())
    if diagnostic is None and (reply := _SMTP_REPLY.search(parsed.text_body)):
        diagnostic = reply.group(0).strip()[:500]
    if status is None and (code := _STATUS.search(diagnostic or "")):
        status = code.group(1)
    return Bounce(
        original_message_id=_original_message_id(parsed),
        recipients=tuple(recipients),
        action=action or ("failed" if (status or "").startswith("5") else None),
        status=status,
        diagnostic=diagnostic[:1000] if diagnostic else None,
    )


# --- spam -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpamVerdict:
    is_spam: bool
    score: float | None
    reason: str


def spam_verdict(parsed: ParsedMail) -> SpamVerdict:
    """The receiving server's spam verdict (SpamAssassin-style X-Spam-Flag / X-Spam-Status)."""
    flag = _header(parsed, "x-spam-flag").lower()
    status = _header(parsed, "x-spam-status")
    found = re.search(r"\b(?:score|hits)\s*=\s*(-?\d+(?:\.\d+)?)", status, re.I)
    score = float(found.group(1)) if found else None
    if flag.startswith("yes"):
        return SpamVerdict(True, score, "X-Spam-Flag: YES")
    if status.lower().startswith("yes"):
        return SpamVerdict(True, score, f"X-Spam-Status: {status[:120]}")
    return SpamVerdict(False, score, "")
