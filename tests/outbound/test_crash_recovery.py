"""A worker killed while sending: before the final dot its mail is sent again by recovery (exactly once);
after it, the mail is `uncertain` and waits for a human."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from mailboxes import outbound
from mailboxes.models import OutboundEmail
from tests.outbound.conftest import WORKER, worker_env
from tickets import replies

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def queue_reply(ticket, agent) -> OutboundEmail:
    from unittest import mock

    with mock.patch("mailboxes.outbound.enqueue"):  # the killed worker below is the one that picks it up
        message = replies.send_reply(
            ticket, author=agent, to=None, cc=[], bcc=[], body="Fixed.", attachments=[]
        )
    return OutboundEmail.objects.get(ticket_message=message)


def start_worker(mailbox_id: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER.format(mailbox_id=mailbox_id)],
        cwd=ROOT,
        env=worker_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"worker exited early: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the worker never got there")
        time.sleep(0.05)


def kill(proc: subprocess.Popen) -> None:
    proc.kill()  # SIGKILL: no cleanup, no except/finally
    proc.wait(10)


def use_server(mailbox, port: int) -> None:
    mailbox.smtp_host, mailbox.smtp_port, mailbox.smtp_security = "127.0.0.1", port, "none"
    mailbox.smtp_password = ""
    mailbox.save()


def test_worker_killed_between_claim_and_send_is_recovered_and_sends_once(ticket, agent, smtp, silent_port):
    mailbox = ticket.mailbox
    use_server(mailbox, silent_port)  # accepts the connection, never greets: the worker hangs there
    mailbox.connect_timeout = 60
    mailbox.save()
    row = queue_reply(ticket, agent)
    proc = start_worker(mailbox.pk)
    wait_for(lambda: OutboundEmail.objects.filter(pk=row.pk, status="sending").exists(), proc)
    time.sleep(0.5)  # now it is blocked waiting for the greeting
    kill(proc)
    row.refresh_from_db()
    assert row.status == "sending" and row.data_sent_at is None and row.attempts == 1

    use_server(mailbox, smtp.plain_port)
    # Within the lease nothing happens: the worker might only be slow.
    assert outbound.recover_stuck() == outbound.Recovery([], [])
    result = outbound.recover_stuck(timezone.now() + outbound.LEASE + timedelta(seconds=1))
    assert result.requeued == [row.pk]
    row.refresh_from_db()
    assert row.status == "sent" and row.attempts == 2
    assert len(smtp.messages) == 1 and smtp.messages[0].message["Message-ID"] == row.message_id


class StallAfterData(threading.Thread):
    """An SMTP server that takes the whole message and then never answers the final dot."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.received = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            f = conn.makefile("rb")
            conn.sendall(b"220 stall.test ESMTP\r\n")
            while True:
                line = f.readline()
                if not line:
                    return
                command = line.strip().upper()
                if command.startswith(b"EHLO"):
                    conn.sendall(b"250-stall.test\r\n250 SIZE 10000000\r\n")
                elif command == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    while f.readline() not in (b".\r\n", b""):
                        pass
                    self.received.set()
                    self.stop.wait(60)  # never answer
                    return
                else:
                    conn.sendall(b"250 ok\r\n")


def test_worker_killed_after_the_final_dot_leaves_the_mail_uncertain(ticket, agent, smtp):
    server = StallAfterData()
    server.start()
    mailbox = ticket.mailbox
    use_server(mailbox, server.port)
    mailbox.auth_timeout = 60
    mailbox.save()
    row = queue_reply(ticket, agent)
    proc = start_worker(mailbox.pk)
    try:
        wait_for(server.received.is_set, proc)
        wait_for(lambda: OutboundEmail.objects.filter(pk=row.pk, data_sent_at__isnull=False).exists(), proc)
        kill(proc)
    finally:
        server.stop.set()
    row.refresh_from_db()
    assert row.status == "sending" and row.data_sent_at is not None

    use_server(mailbox, smtp.plain_port)
    result = outbound.recover_stuck(timezone.now() + outbound.LEASE + timedelta(seconds=1))
    assert result == outbound.Recovery([], [row.pk])
    row.refresh_from_db()
    assert row.status == "uncertain" and "may or may not have arrived" in row.error_message
    outbound.dispatch_due(timezone.now() + timedelta(days=1))
    assert smtp.messages == []  # never resent by itself
