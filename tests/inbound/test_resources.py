"""Resource isolation: a 25 MB attachment streams within 200 MB, a poison message or a dead mailbox delays
nothing else."""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import threading
import time

import pytest
from django.core.management import call_command
from django.db import connections

from mailboxes import blobs, poll_health, polling
from mailboxes.models import Health, InboundMessage, Mailbox
from tests.inbound.conftest import MANAGE, build_mail, make_mailbox, worker_env
from tickets.models import Attachment, Ticket

pytestmark = [pytest.mark.django_db(transaction=True)]

PEAK_RSS_LIMIT_MB = 200


def test_25_mb_attachment_is_ingested_within_200_mb(tenant, dovecot, s3_storage, inbound_bucket):
    mailbox = make_mailbox(tenant, dovecot)
    payload = os.urandom(25 * 1024 * 1024)
    raw = build_mail(subject="Big scan", attachments=[("scan.tif", "image/tiff", payload)])
    dovecot.append(mailbox.email, raw)
    del raw
    dovecot.append(mailbox.email, build_mail(subject="Small one after it"))
    command = [sys.executable, str(MANAGE), "poll_mailboxes", "--once", "--mailbox", str(mailbox.pk)]
    proc = subprocess.Popen(
        command, env=worker_env(s3_storage, inbound_bucket), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    # The worker reports VmHWM itself: wait4's ru_maxrss would include the moments between fork and exec,
    # when the child still counted this (big) test process's pages.
    peak_mb = float(re.search(rb"peak RSS: ([\d.]+) MB", out).group(1))

    att = Attachment.objects.get(message__ticket__mailbox=mailbox)
    assert att.size == len(payload) and att.sha256 == hashlib.sha256(payload).hexdigest()
    with blobs.open_blob(att.storage_key) as f:
        digest = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    assert digest.hexdigest() == att.sha256
    assert Ticket.objects.filter(mailbox=mailbox).count() == 2
    assert peak_mb < PEAK_RSS_LIMIT_MB, f"worker peak RSS {peak_mb:.0f} MB"


POISON = (
    b"From: Broken <broken@customer.test>\r\n"
    b"To: support@example.test\r\n"
    b"Subject: =?x-no-such-charset?q?=FF=FE?=\r\n"
    b"Message-ID: <poison@customer.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
    b"--b1\r\nContent-Type: text/plain; charset=x-no-such-charset\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"=FF=FE=00 broken =ZZ\r\n"
    b'--b1\r\nContent-Type: multipart/alternative; boundary="b2"\r\n\r\n--b2\r\nContent-Type: text/html; charset="\r\n\r\n'
    b"<p>\xff\xfe never closed\r\n--b1--\r\n"
)


def test_poison_message_is_quarantined_or_kept_and_never_blocks_the_others(tenant, dovecot, s3_storage):
    mailbox = make_mailbox(tenant, dovecot)
    dovecot.append(mailbox.email, build_mail(subject="Before"))
    dovecot.append(mailbox.email, POISON)
    dovecot.append(mailbox.email, build_mail(subject="Crash me"))
    dovecot.append(mailbox.email, build_mail(subject="After"))

    from mailboxes import parsing

    real_parse = parsing.parse

    def exploding_parse(raw, **kwargs):  # a bug for one message: it must be contained to that message
        if b"Subject: Crash me" in raw:
            raise RuntimeError("simulated parser bug")
        return real_parse(raw, **kwargs)

    parsing.parse = exploding_parse
    try:
        result = polling.poll(mailbox.pk)
    finally:
        parsing.parse = real_parse

    assert not result.error
    titles = set(Ticket.objects.filter(mailbox=mailbox).values_list("title", flat=True))
    assert {"Before", "After"} <= titles
    crashed = InboundMessage.objects.get(mailbox=mailbox, subject="Crash me")
    assert crashed.status == "quarantined" and "simulated parser bug" in crashed.quarantine_reason
    poison = InboundMessage.objects.get(mailbox=mailbox, message_id="<poison@customer.test>")
    assert poison.status in ("processed", "quarantined")
    assert InboundMessage.objects.filter(mailbox=mailbox).count() == 4

    # Reprocessing the quarantined one (the bug is fixed now) turns it into a ticket, once.
    call_command("poll_mailboxes", "--once", "--mailbox", str(mailbox.pk), stdout=io.StringIO())
    from tickets import quarantine

    assert quarantine.reprocess(crashed).kind == "new-ticket"
    assert quarantine.reprocess(crashed).kind == "new-ticket"  # idempotent: the same outcome, no new ticket
    assert Ticket.objects.filter(mailbox=mailbox, title="Crash me").count() == 1


def test_unreachable_mailbox_backs_off_and_does_not_delay_others(tenant, dovecot, s3_storage, silent_port):
    good = make_mailbox(tenant, dovecot)
    dead = make_mailbox(tenant, None, imap_host="127.0.0.1", imap_port=silent_port, imap_security="none",
                        imap_username="x", imap_password="y", connect_timeout=8)  # fmt: skip
    dovecot.append(good.email, build_mail(subject="Still arrives"))

    done = threading.Event()
    started = time.monotonic()

    def run():
        try:
            call_command("poll_mailboxes", "--once", stdout=io.StringIO())
        finally:
            connections.close_all()  # this thread's own connection, or it outlives the test database
        done.set()

    worker = threading.Thread(target=run)
    worker.start()
    while not Ticket.objects.filter(mailbox=good).exists():
        assert time.monotonic() - started < 6, "the good mailbox waited for the dead one"
        time.sleep(0.1)
    assert not done.is_set()  # the dead one is still hanging in its connect timeout
    worker.join(30)

    dead.refresh_from_db()
    assert dead.consecutive_failures == 1 and dead.last_error
    assert dead.next_poll_at > dead.last_error_at  # backs off
    first_delay = (dead.next_poll_at - dead.last_error_at).total_seconds()
    assert 0.8 * 10 <= first_delay <= 1.2 * 10  # poll_interval 5 s x 2, with jitter
    good.refresh_from_db()
    assert good.health == Health.CONNECTED

    # Repeated failures back off further and mark the mailbox as failing.
    polling.poll(dead.pk)
    dead.refresh_from_db()
    assert dead.consecutive_failures == 2 and dead.health == Health.FAILING
    assert (dead.next_poll_at - dead.last_error_at).total_seconds() >= 0.8 * 20
    assert Mailbox.objects.due_for_poll().filter(pk=dead.pk).count() == 0


def test_backoff_is_capped_and_jittered():
    delays = {round(poll_health.backoff_seconds(60, 20)) for _ in range(20)}
    assert max(delays) <= 3600 * 1.2 and min(delays) >= 3600 * 0.8 and len(delays) > 1
