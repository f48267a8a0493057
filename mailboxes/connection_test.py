"""The connection test of a mailbox: can we read (IMAP) and send (SMTP) with its settings, right now?

IMAP: connect, sign in, list folders (and learn the special-use ones), count the inbox. SMTP: connect, sign
in, send a test mail from the account to itself (and optionally to the admin), recorded in the outbound log.
Each step's outcome is saved on the `ConnectionTest` row in plain words, and the mailbox's health follows.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from mailboxes import imap, smtp
from mailboxes.errors import MailError, NeedsReconnect, classify_imap, classify_smtp
from mailboxes.models import (
    ConnectionTest,
    Health,
    Mailbox,
    OutboundEmail,
    OutboundKind,
    OutboundStatus,
    TestStatus,
)

logger = logging.getLogger(__name__)

FOLDER_ROLES = {
    "sent": "folder_sent",
    "drafts": "folder_drafts",
    "trash": "folder_trash",
    "archive": "folder_archive",
}


@dataclass
class Step:
    key: str
    label: str
    ok: bool = False
    skipped: bool = False
    detail: str = ""  # what we found, e.g. "12 messages in INBOX"
    code: str = ""
    message: str = ""
    advice: str = ""
    server_reply: str = ""

    def fail(self, error: MailError) -> None:
        self.ok = False
        self.code, self.message, self.advice, self.server_reply = (
            error.code,
            error.message,
            error.advice,
            error.detail[:500],
        )


def run(test: ConnectionTest) -> ConnectionTest:
    """Run `test` (claimed from queued; a second delivery of the same task does nothing) and record the outcome."""
    claimed = ConnectionTest.objects.filter(pk=test.pk, status=TestStatus.QUEUED).update(
        status=TestStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        test.refresh_from_db()
        return test
    mailbox = Mailbox.objects.select_related("tenant").get(pk=test.mailbox_id)
    steps: list[Step] = []
    try:
        steps += _imap_steps(mailbox)
        steps += _smtp_steps(mailbox, test)
    except Exception as exc:  # a bug must not leave the page spinning forever
        logger.exception("Connection test %s crashed", test.pk)
        steps.append(
            Step(
                "internal",
                "Finish the test",
                message=f"The test stopped unexpectedly ({type(exc).__name__}).",
            )
        )
    _finish(test, mailbox, steps)
    return test


def _imap_steps(mailbox: Mailbox) -> list[Step]:
    connect = Step("imap_connect", f"Connect to the IMAP server {mailbox.imap_host}:{mailbox.imap_port}")
    login = Step("imap_login", "Sign in to IMAP")
    folders = Step("imap_folders", "List folders")
    inbox = Step("imap_inbox", "Count messages in the inbox")
    steps = [connect, login, folders, inbox]
    try:
        client = imap.connect(mailbox)
    except MailError as error:
        connect.fail(error)
        _skip(login, folders, inbox)
        return steps
    connect.ok = True
    connect.detail = "Encrypted (TLS)" if mailbox.imap_security != "none" else "Not encrypted"
    try:
        try:
            imap.login(client, mailbox)
        except MailError as error:
            login.fail(error)
            _skip(folders, inbox)
            return steps
        login.ok = True
        login.detail = (
            "Signed in with OAuth (XOAUTH2)" if mailbox.is_oauth else f"Signed in as {mailbox.imap_login[0]}"
        )
        try:
            names, roles = imap.special_use_folders(client)
            folders.ok = True
            folders.detail = f"{len(names)} folders" + (
                " — "
                + ", ".join(
                    f"{role.title()}: {name}" for role, name in sorted(roles.items()) if role in FOLDER_ROLES
                )
                if roles
                else ""
            )
            _save_folders(mailbox, names, roles)
        except Exception as exc:
            folders.fail(classify_imap(exc, imap.where(mailbox)) if not isinstance(exc, MailError) else exc)
        try:
            status = client.folder_status(mailbox.folder_inbox or "INBOX", [b"MESSAGES", b"UNSEEN"])
            inbox.ok = True
            total, unseen = status.get(b"MESSAGES", 0), status.get(b"UNSEEN", 0)
            noun = "message" if total == 1 else "messages"
            inbox.detail = f"{total} {noun} in {mailbox.folder_inbox or 'INBOX'} ({unseen} unread)"
        except Exception as exc:
            inbox.fail(classify_imap(exc, imap.where(mailbox)) if not isinstance(exc, MailError) else exc)
    finally:
        imap._close(client)
    return steps


def _save_folders(mailbox: Mailbox, names: list[str], roles: dict[str, str]) -> None:
    updates: dict = {"detected_folders": names}
    for role, field in FOLDER_ROLES.items():
        if roles.get(role) and not getattr(mailbox, field):
            updates[field] = roles[role]
    Mailbox.objects.filter(pk=mailbox.pk).update(**updates)
    for field, value in updates.items():
        setattr(mailbox, field, value)


def _skip(*steps: Step) -> None:
    for step in steps:
        step.skipped = True


def test_message(mailbox: Mailbox, test: ConnectionTest, recipients: list[str]) -> EmailMessage:
    """The test mail: from the account to itself, marked automatic so nothing answers or tickets it."""
    message = EmailMessage()
    message["From"] = formataddr((mailbox.from_header_name, mailbox.email))
    message["To"] = ", ".join(recipients)
    message["Subject"] = f"Helpdesk connection test: {mailbox.name} can send"
    message["Date"] = format_datetime(timezone.now())
    message["Message-ID"] = f"<test.{secrets.token_urlsafe(18)}@{mailbox.domain or 'helpdesk.invalid'}>"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Helpdesk-Test"] = str(test.pk)
    message.set_content(
        f"This is a test email from {settings.SITE_URL}.\n\n"
        f"It was sent through the SMTP server {mailbox.smtp_host} to check that the mailbox "
        f"“{mailbox.name}” <{mailbox.email}> can send mail. You can delete it.\n"
    )
    return message


def _smtp_steps(mailbox: Mailbox, test: ConnectionTest) -> list[Step]:
    connect = Step("smtp_connect", f"Connect to the SMTP server {mailbox.smtp_host}:{mailbox.smtp_port}")
    login = Step("smtp_login", "Sign in to SMTP")
    send = Step("smtp_send", "Send a test email")
    steps = [connect, login, send]
    try:
        conn = smtp.connect(mailbox)
    except MailError as error:
        connect.fail(error)
        _skip(login, send)
        return steps
    connect.ok = True
    connect.detail = "Encrypted (TLS)" if mailbox.smtp_security != "none" else "Not encrypted"
    try:
        try:
            smtp.login(conn, mailbox)
        except MailError as error:
            login.fail(error)
            _skip(send)
            return steps
        login.ok = True
        login.detail = "Signed in with OAuth (XOAUTH2)" if mailbox.is_oauth else "Signed in"
        recipients = [mailbox.email] + ([test.also_send_to] if test.also_send_to else [])
        message = test_message(mailbox, test, recipients)
        outbound = OutboundEmail.objects.create(
            tenant=mailbox.tenant,
            mailbox=mailbox,
            kind=OutboundKind.TEST,
            from_addr=message["From"],
            to=recipients,
            subject=str(message["Subject"]),
            message_id=str(message["Message-ID"]),
            text=message.get_content(),
            status=OutboundStatus.SENDING,
            attempts=1,
            claimed_at=timezone.now(),
            last_attempt_at=timezone.now(),
            created_by=test.requested_by,
        )
        test.outbound = outbound
        try:
            refused = conn.send_message(message, from_addr=mailbox.email, to_addrs=recipients)
        except Exception as exc:
            error = exc if isinstance(exc, MailError) else classify_smtp(exc, smtp.where(mailbox))
            send.fail(error)
            OutboundEmail.objects.filter(pk=outbound.pk).update(
                status=OutboundStatus.FAILED,
                smtp_code=error.smtp_code,
                smtp_text=error.detail[:1000],
                error_message=error.message,
                error_advice=error.advice,
            )
            return steps
        send.ok = True
        send.detail = f"Sent to {', '.join(r for r in recipients if r not in refused)}"
        if refused:
            send.detail += f" (refused: {', '.join(refused)})"
        OutboundEmail.objects.filter(pk=outbound.pk).update(
            status=OutboundStatus.SENT, sent_at=timezone.now(), data_sent_at=timezone.now(), smtp_code=250
        )
    finally:
        smtp._close(conn)
    return steps


def _finish(test: ConnectionTest, mailbox: Mailbox, steps: list[Step]) -> None:
    failed = next((s for s in steps if not s.ok and not s.skipped), None)
    now = timezone.now()
    test.steps = [asdict(s) for s in steps]
    test.status = TestStatus.FAILED if failed else TestStatus.PASSED
    test.finished_at = now
    if failed:
        test.error_code, test.message, test.advice = failed.code, failed.message, failed.advice
    test.save(update_fields=["steps", "status", "finished_at", "error_code", "message", "advice", "outbound"])

    current = Mailbox.objects.filter(pk=mailbox.pk)
    disabled = not mailbox.is_active or mailbox.health == Health.DISABLED
    if failed is None:
        current.update(
            health=Health.DISABLED if disabled else Health.CONNECTED,
            last_success_at=now,
            last_error="",
            last_error_advice="",
            last_error_at=None,
            consecutive_failures=0,
            reconnect_notified_at=None,
        )
    else:
        health = Health.NEEDS_RECONNECT if failed.code == NeedsReconnect.code else Health.FAILING
        current.update(
            health=Health.DISABLED if disabled else health,
            last_error=f"{failed.label}: {failed.message}",
            last_error_advice=failed.advice,
            last_error_at=now,
            consecutive_failures=F("consecutive_failures") + 1,
        )


def summary(test: ConnectionTest) -> str:
    """The result in plain words, as the CLI prints it."""
    lines = []
    for step in test.steps:
        mark = "ok  " if step["ok"] else ("skip" if step["skipped"] else "FAIL")
        line = f"[{mark}] {step['label']}"
        if step["ok"] and step["detail"]:
            line += f": {step['detail']}"
        lines.append(line)
        if not step["ok"] and not step["skipped"]:
            lines.append(f"       {step['message']}")
            if step["advice"]:
                lines.append(f"       What to try: {step['advice']}")
            if step["server_reply"]:
                lines.append(f"       Server said: {step['server_reply']}")
    lines.append(
        "Result: the mailbox works."
        if test.status == TestStatus.PASSED
        else "Result: the mailbox does not work yet."
    )
    return "\n".join(lines)
