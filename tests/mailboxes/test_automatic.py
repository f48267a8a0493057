"""`mailboxes.automatic`: machine-written mail is recognised (RFC 3834), people's mail is not,
bounces name the message that bounced. Corpus at ../shared/corpus (skips without it, fails under
CI=true)."""

import re

import pytest

from mailboxes.automatic import (
    AutoKind,
    Bounce,
    classify,
    is_noreply_address,
    parse_bounce,
    spam_verdict,
)
from mailboxes.parsing import parse
from tests.corpus import AUTOMATIC_TAGS, CORPUS, manifest_rows, require_corpus, tags_of
from tests.corpus import params as _params

HUMAN_TAGS = {"reply", "forwarded", "forwarded-inline"}
ROWS = manifest_rows()


def _load(path: str | None):
    require_corpus(path)
    return parse((CORPUS / path).read_bytes())


AUTOMATIC_ROWS = [row for row in ROWS if tags_of(row) & AUTOMATIC_TAGS]
HUMAN_ROWS = [row for row in ROWS if tags_of(row) & HUMAN_TAGS and not tags_of(row) & AUTOMATIC_TAGS]
BOUNCE_ROWS = [row for row in ROWS if "bounce-dsn" in tags_of(row)]


@pytest.mark.parametrize("path", _params(AUTOMATIC_ROWS))
def test_corpus_machine_mail_is_automatic(path):
    verdict = classify(_load(path))
    assert verdict.kind, f"{path} not recognised as automatic"
    assert verdict.reason


@pytest.mark.parametrize("path", _params(HUMAN_ROWS))
def test_corpus_replies_and_forwards_from_people_are_not_automatic(path):
    parsed = _load(path)
    verdict = classify(parsed)
    assert not verdict.kind, f"{path}: {verdict.reason}"
    assert parse_bounce(parsed) is None


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("mail/flanker/complaints/aol.eml", AutoKind.FEEDBACK_REPORT),
        ("mail/mimekit/messages/feedback-report.txt", AutoKind.FEEDBACK_REPORT),
        ("mail/flanker/disposition-notification.eml", AutoKind.MDN),
        ("mail/zbateson-mail-mime-parser/m4006.txt", AutoKind.MDN),
        ("mail/sisimai-set-of-emails/maildir/bsd/rfc3834-01.eml", AutoKind.AUTO_REPLY),
        ("mail/sisimai-set-of-emails/maildir/bsd/rfc3834-03.eml", AutoKind.AUTO_REPLY),
        ("mail/php-mime-mail-parser/issue212", AutoKind.AUTO_REPLY),
        ("mail/gitlab/auto_reply.eml", AutoKind.AUTO_REPLY),
        ("mail/zammad/mail089.box", AutoKind.AUTO_GENERATED),
        ("mail/zammad/mail052.box", AutoKind.BOUNCE),
        ("mail/sisimai-set-of-emails/maildir/bsd/lhost-exim-01.eml", AutoKind.BOUNCE),
    ],
)
def test_corpus_kinds(path, kind):
    assert classify(_load(path if ROWS else None)).kind is kind


@pytest.mark.parametrize("path", _params(BOUNCE_ROWS))
def test_corpus_bounces_are_bounces_with_details(path):
    parsed = _load(path)
    assert classify(parsed).kind is AutoKind.BOUNCE
    bounce = parse_bounce(parsed)
    assert isinstance(bounce, Bounce)
    raw = (CORPUS / path).read_bytes().decode("latin-1")
    # Every Message-ID written anywhere in the report except the report's own: the original's.
    written = {m.group(1) for m in re.finditer(r"(?im)^message-id:\s*(<[^<>\s]+>)", raw)}
    candidates = written - {parsed.message_id}
    if bounce.original_message_id and candidates:
        assert bounce.original_message_id in candidates | set(parsed.in_reply_to)


def test_corpus_bounces_name_the_original_message_where_they_can():
    if not ROWS:
        _load(None)
    found = [parse_bounce(_load(row["path"])) for row in BOUNCE_ROWS]
    with_id = [b for b in found if b and b.original_message_id]
    assert len(BOUNCE_ROWS) == 28
    assert len(with_id) >= 20, len(with_id)  # the other 8 reports carry no original Message-ID
    with_recipient = [b for b in found if b and b.recipients]
    assert len(with_recipient) >= 20, len(with_recipient)


def test_corpus_dsn_details():
    bounce = parse_bounce(
        _load("mail/zammad/mail033-undelivered-mail-returned-to-sender.box" if ROWS else None)
    )
    assert bounce == Bounce(
        original_message_id="<20150830145601.30.608881@edenhofer.zammad.com>",
        recipients=("not_existing@znuny.com",),
        action="failed",
        status="5.1.1",
        diagnostic=bounce.diagnostic,
    )
    assert bounce.diagnostic.startswith("550 5.1.1")
    assert bounce.is_permanent and bounce.recipient == "not_existing@znuny.com"
    delayed = parse_bounce(_load("mail/zammad/mail078.box"))
    assert (delayed.action, delayed.status, delayed.is_permanent) == ("delayed", "4.4.1", False)


def test_corpus_spam_flags():
    assert spam_verdict(_load("mail/zammad/mail046.box" if ROWS else None)).is_spam
    assert not spam_verdict(_load("mail/zammad/mail085.box")).is_spam


# --- hand-written cases, one per rule -------------------------------------------------------------


def mail(headers: str, body: str = "Hello, I need help with my order.\n") -> bytes:
    base = "From: Customer <customer@example.com>\nTo: support@example.test\nSubject: Help\n"
    return (base + headers.strip("\n") + ("\n" if headers.strip() else "") + "\n" + body).encode()


def with_subject(subject: str, headers: str = "") -> bytes:
    return mail(headers).replace(b"Subject: Help", f"Subject: {subject}".encode())


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        ("Auto-Submitted: auto-replied", AutoKind.AUTO_REPLY),
        ("Auto-Submitted: auto-generated", AutoKind.AUTO_GENERATED),
        ("Auto-Submitted: auto-notified; owner-email=x@example.com", AutoKind.AUTO_GENERATED),
        ("X-Autoreply: yes", AutoKind.AUTO_REPLY),
        ("X-Autorespond: on vacation", AutoKind.AUTO_REPLY),
        ("X-Auto-Response-Suppress: All", AutoKind.AUTO_GENERATED),
        ("X-Auto-Response-Suppress: OOF, AutoReply", AutoKind.AUTO_GENERATED),
        ("Precedence: bulk", AutoKind.AUTO_GENERATED),
        ("Precedence: junk", AutoKind.AUTO_GENERATED),
        ("Precedence: list", AutoKind.AUTO_GENERATED),
        ("List-Id: Users <users.lists.example.com>", AutoKind.AUTO_GENERATED),
        ("List-Unsubscribe: <mailto:leave@example.com>", AutoKind.AUTO_GENERATED),
        ("Return-Path: <>", AutoKind.AUTO_GENERATED),
        ("X-Failed-Recipients: gone@example.org", AutoKind.BOUNCE),
    ],
)
def test_header_rules(headers, kind):
    verdict = classify(parse(mail(headers)))
    assert verdict.kind is kind, verdict
    assert verdict.reason


@pytest.mark.parametrize(
    "headers",
    [
        "",
        "Auto-Submitted: no",
        "X-Autoreply: no",
        "X-Auto-Response-Suppress: DR, RN",  # receipts only: says nothing about auto-replies
        "Precedence: first-class",
        "Return-Path: <customer@example.com>",
        "In-Reply-To: <abc@example.test>\nReferences: <abc@example.test>",
    ],
)
def test_people_are_not_automatic(headers):
    assert classify(parse(mail(headers))).kind is AutoKind.NONE


@pytest.mark.parametrize(
    ("sender", "kind"),
    [
        ("MAILER-DAEMON@mx.example.org", AutoKind.AUTO_GENERATED),
        ("postmaster@example.org", AutoKind.AUTO_GENERATED),
        ("no-reply@shop.example", AutoKind.AUTO_GENERATED),
        ("notifications-noreply@app.example", AutoKind.AUTO_GENERATED),
    ],
)
def test_machine_senders_are_automatic(sender, kind):
    raw = mail("").replace(b"Customer <customer@example.com>", sender.encode())
    assert classify(parse(raw)).kind is kind


def test_mailer_daemon_with_empty_return_path_is_a_bounce():
    raw = mail("Return-Path: <>").replace(b"Customer <customer@example.com>", b"MAILER-DAEMON@mx.example.org")
    assert classify(parse(raw)).kind is AutoKind.BOUNCE


@pytest.mark.parametrize(
    ("subject", "kind"),
    [
        ("Automatic reply: Help", AutoKind.AUTO_REPLY),
        ("Out of Office: Help", AutoKind.AUTO_REPLY),
        ("Abwesenheitsnotiz: Hilfe", AutoKind.AUTO_REPLY),
        ("Automatische Antwort: Hilfe", AutoKind.AUTO_REPLY),
        ("Réponse automatique : Aide", AutoKind.AUTO_REPLY),
        ("Respuesta automática: Ayuda", AutoKind.AUTO_REPLY),
        ("=?utf-8?b?6Ieq5Yqo5Zue5aSNOiDluK7liqk=?=", AutoKind.AUTO_REPLY),  # 自动回复: 帮助
        ("Undeliverable: Help", AutoKind.BOUNCE),
        ("Delivery Status Notification (Failure)", AutoKind.BOUNCE),
        ("Mail delivery failed: returning message to sender", AutoKind.BOUNCE),
        ("Unzustellbar: Hilfe", AutoKind.BOUNCE),
    ],
)
def test_machine_subjects(subject, kind):
    assert classify(parse(with_subject(subject))).kind is kind


@pytest.mark.parametrize(
    "subject",
    [
        "Re: Automatic reply: Help",
        "Fwd: Undeliverable: Help",
        "AW: Out of Office: Help",
        "My order was undeliverable, can you help?",
        "Read this please",
        "Read: the attached contract",  # "Read:" alone, without a receipt's shape, is a person
        "Question about your auto-reply settings",
        "Absence tomorrow",
        "Undeliverable package from your shop",
        "Delivery failure on order 12345",
        "Returned mail for a refund",
        "Out of office equipment: need a quote",
    ],
)
def test_people_writing_about_such_things_are_not_caught(subject):
    assert classify(parse(with_subject(subject))).kind is AutoKind.NONE


def _report(report_type: str, part_type: str, fields: str) -> bytes:
    body = (
        "--r\nContent-Type: text/plain\n\nReport.\n"
        f"--r\nContent-Type: {part_type}\n\n{fields}\n"
        "--r\nContent-Type: message/rfc822\n\nMessage-ID: <ours-123@helpdesk.example.test>\n"
        "Subject: Your ticket\n\nbody\n--r--\n"
    )
    headers = f'Content-Type: multipart/report; report-type={report_type}; boundary="r"'
    return mail(headers, body).replace(b"Customer <customer@example.com>", b"Mail System <mx@example.org>")


def test_reports_are_classified_by_their_type():
    dsn = _report(
        "delivery-status",
        "message/delivery-status",
        "Reporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; gone@example.org\n"
        "Action: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 no such user",
    )
    mdn = _report(
        "disposition-notification",
        "message/disposition-notification",
        "Disposition: manual-action/MDN-sent-manually; displayed",
    )
    arf = _report("feedback-report", "message/feedback-report", "Feedback-Type: abuse\nVersion: 1")
    assert [classify(parse(raw)).kind for raw in (dsn, mdn, arf)] == [
        AutoKind.BOUNCE,
        AutoKind.MDN,
        AutoKind.FEEDBACK_REPORT,
    ]
    bounce = parse_bounce(parse(dsn))
    assert bounce == Bounce(
        original_message_id="<ours-123@helpdesk.example.test>",
        recipients=("gone@example.org",),
        action="failed",
        status="5.1.1",
        diagnostic="550 5.1.1 no such user",
    )
    assert parse_bounce(parse(mdn)) is None and parse_bounce(parse(arf)) is None


def test_plain_text_bounce_takes_the_original_id_from_the_quoted_headers():
    body = (
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its recipients.\n\n"
        "  gone@example.org\n    SMTP error from remote mail server after RCPT TO:<gone@example.org>:\n"
        "    550 5.1.1 User unknown\n\n------ This is a copy of the message, including all the headers. ------\n\n"
        "Message-ID: <ours-456@helpdesk.example.test>\nSubject: Your ticket\n"
    )
    raw = mail("X-Failed-Recipients: gone@example.org\nAuto-Submitted: auto-replied", body)
    bounce = parse_bounce(parse(raw))
    assert bounce.original_message_id == "<ours-456@helpdesk.example.test>"
    assert bounce.recipients == ("gone@example.org",)
    assert (bounce.status, bounce.action) == ("5.1.1", "failed")


def test_auto_replies_are_not_bounces():
    assert parse_bounce(parse(mail("Auto-Submitted: auto-replied"))) is None


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("noreply@example.com", True),
        ("no-reply@example.com", True),
        ("no_reply@example.com", True),
        ("NoReply123@example.com", True),
        ("do-not-reply@example.com", True),
        ("donotreply@example.com", True),
        ("mailer-daemon@example.com", True),
        ("MAILER-DAEMON", True),
        ("postmaster@example.com", True),
        ("bounce@example.com", True),
        ("bounces+abc=example.com@lists.example.org", True),
        ("bounce-123@mail.example.com", True),
        ("alerts.noreply@example.com", True),
        ("support@example.com", False),
        ("reply@example.com", False),
        ("bouncer@example.com", False),
        ("noreplyguy@example.com", False),
        ("", False),
        (None, False),
    ],
)
def test_noreply_addresses(address, expected):
    assert is_noreply_address(address) is expected


@pytest.mark.parametrize(
    ("headers", "is_spam", "score"),
    [
        ("X-Spam-Flag: YES", True, None),
        ("X-Spam-Status: Yes, score=7.2 required=5.0", True, 7.2),
        ("X-Spam-Status: No, score=-1.0 required=5.0", False, -1.0),
        ("X-Spam-Flag: NO", False, None),
        ("", False, None),
    ],
)
def test_spam_verdict(headers, is_spam, score):
    verdict = spam_verdict(parse(mail(headers)))
    assert (verdict.is_spam, verdict.score) == (is_spam, score)
    assert bool(verdict.reason) is is_spam
