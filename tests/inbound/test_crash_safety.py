"""A worker SIGKILLed at random points while ingesting loses nothing and duplicates nothing."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from mailboxes import blobs
from mailboxes.models import InboundMessage, Mailbox
from tests.inbound.conftest import MANAGE, build_mail, make_mailbox, worker_env
from tickets.models import Attachment, Message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MESSAGES = 300
ROUNDS = 10


def _corpus(n: int) -> dict[str, tuple[bytes, bytes | None]]:
    """Message-ID -> (raw, attachment payload or None)."""
    rnd = random.Random(4)
    out = {}
    for i in range(n):
        mid = f"<crash-{i}@customer.test>"
        payload = rnd.randbytes(rnd.randint(2_000, 60_000)) if i % 4 == 0 else None
        atts = [(f"file-{i}.bin", "application/octet-stream", payload)] if payload else []
        raw = build_mail(
            sender=f"Person {i % 37} <p{i % 37}@customer.test>",
            subject=f"Crash test {i} - ünïcödé",
            body=f"Message number {i}\n" * (1 + i % 5),
            message_id=mid,
            attachments=atts,
        )
        out[mid] = (raw, payload)
    return out


def _server_ids(dovecot, email: str) -> set[str]:
    with dovecot.imap(email) as client:
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        data = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if uids else {}
    ids = set()
    for d in data.values():
        header = d[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().strip()
        ids.add(header.split(":", 1)[1].strip())
    return ids


def _stored_ids(mailbox) -> list[str]:
    return list(Message.objects.filter(ticket__mailbox=mailbox).values_list("message_id", flat=True))


def _wait_until_polling(mailbox, proc: subprocess.Popen) -> None:
    """Until the worker holds the mailbox's lease (its owner string carries the pid), or has exited."""
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        owner = Mailbox.objects.filter(pk=mailbox.pk).values_list("poll_lease_owner", flat=True).get()
        if f":{proc.pid}:" in owner:
            return
        time.sleep(0.02)


def _kill_after_progress(mailbox, proc: subprocess.Popen, rnd: random.Random) -> bool:
    """SIGKILL the worker at a random point of its work: once a random number of further messages has been
    recorded in the ledger (so while fetching, storing, committing or deleting), or after a random delay,
    whichever comes first. Relative to progress, so the kills land inside the poll however fast it is.
    Returns whether it killed (the worker may have finished first)."""
    rows = InboundMessage.objects.filter(mailbox=mailbox)
    target = rows.count() + rnd.randint(1, 40)
    deadline = time.monotonic() + rnd.uniform(0.05, 1.5)
    while proc.poll() is None and time.monotonic() < deadline and rows.count() < target:
        time.sleep(0.002)
    time.sleep(rnd.uniform(0, 0.05))  # and not always right at a commit
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    return True


def test_sigkill_at_random_points_loses_and_duplicates_nothing(tenant, dovecot, s3_storage, inbound_bucket):
    mailbox = make_mailbox(tenant, dovecot, after_import="delete")
    mails = _corpus(MESSAGES)
    with dovecot.imap(mailbox.email) as client:
        for raw, _ in mails.values():
            client.append("INBOX", raw)
    env = {**worker_env(s3_storage, inbound_bucket), "INBOUND_FETCH_BATCH": "5"}
    command = [sys.executable, str(MANAGE), "poll_mailboxes", "--once", "--mailbox", str(mailbox.pk)]
    rnd = random.Random(int(os.environ.get("CRASH_SEED", "7")))
    started = time.monotonic()
    kills = 0
    progress: list[int] = []
    for _ in range(ROUNDS):
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_until_polling(mailbox, proc)  # Django's start-up is not the interesting part
        kills += _kill_after_progress(mailbox, proc, rnd)
        proc.wait()
        # The invariant at every crash: a message gone from the server is committed in a ticket.
        on_server = _server_ids(dovecot, mailbox.email)
        stored = _stored_ids(mailbox)
        assert len(stored) == len(set(stored)), "a message was stored twice"
        assert on_server | set(stored) == set(mails), "a message was deleted before it was committed"
        progress.append(len(stored))
    final = subprocess.run(command, env=env, capture_output=True, timeout=120)
    assert final.returncode == 0, final.stderr.decode()[-2000:]
    print(
        "messages committed after each kill:", progress, "done at", round(time.monotonic() - started, 1), "s"
    )
    assert kills >= 5, "the worker finished too early for the test to mean anything"
    assert time.monotonic() - started < 90

    stored = _stored_ids(mailbox)
    assert sorted(stored) == sorted(mails)  # every message exactly once
    assert _server_ids(dovecot, mailbox.email) == set()  # and then deleted from the server
    assert InboundMessage.objects.filter(mailbox=mailbox, status="processed").count() == MESSAGES
    for att in Attachment.objects.filter(message__ticket__mailbox=mailbox).select_related("message"):
        _, payload = mails[att.message.message_id]
        assert att.sha256 == hashlib.sha256(payload).hexdigest()
        assert blobs.read(att.storage_key) == payload
    assert Attachment.objects.filter(message__ticket__mailbox=mailbox).count() == sum(
        1 for _, p in mails.values() if p
    )
