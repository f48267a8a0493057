"""IMAP IDLE: with the listener running, a new mail is a visible ticket within 2 seconds (p95 over 50)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from mailboxes.models import Health, Mailbox
from tests.inbound.conftest import MANAGE, build_mail, make_mailbox, worker_env
from tickets.models import Ticket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MAILS = 50


def test_idle_listener_turns_new_mail_into_tickets_within_two_seconds(
    tenant, dovecot, s3_storage, inbound_bucket
):
    mailbox = make_mailbox(tenant, dovecot, poll_interval=3600)  # only IDLE can explain a fast ticket
    command = [sys.executable, str(MANAGE), "imap_idle", "--inline", "--mailbox", str(mailbox.pk)]
    proc = subprocess.Popen(command, env=worker_env(s3_storage, inbound_bucket), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while Mailbox.objects.get(pk=mailbox.pk).health != Health.CONNECTED:  # the catch-up poll ran
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the listener never connected"
            time.sleep(0.1)
        latencies = []
        with dovecot.imap(mailbox.email) as client:
            for n in range(MAILS):
                subject = f"Idle test {n}"
                sent = time.monotonic()
                client.append("INBOX", build_mail(subject=subject))
                while not Ticket.objects.filter(mailbox=mailbox, title=subject).exists():
                    assert time.monotonic() - sent < 15, f"mail {n} never became a ticket"
                    time.sleep(0.02)
                latencies.append(time.monotonic() - sent)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    latencies.sort()
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    print(f"IDLE latency p50 {latencies[len(latencies) // 2]:.2f}s p95 {p95:.2f}s max {latencies[-1]:.2f}s")
    assert p95 < 2.0, latencies
