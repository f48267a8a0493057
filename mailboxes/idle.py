"""IMAP IDLE: a long-lived connection per mailbox that wakes the poll within a second of new mail.

IDLE only tells us *that* something arrived; the poll (ledger, processing, after-import) does the rest, so
exactly-once stays in one place. The listener reconnects with jittered backoff and re-issues IDLE every
5 minutes (servers drop IDLE after 30). After every (re)connect it wakes the poll once, to catch up on
whatever arrived while it was not listening.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from django.db import close_old_connections

from mailboxes.models import Mailbox

log = logging.getLogger(__name__)

REISSUE_SECONDS = 5 * 60  # servers drop IDLE after 30 min; a fresh IDLE also catches anything missed
CHECK_SECONDS = 0.5
NEW_MAIL = (b"EXISTS", b"RECENT")


def enqueue_poll(mailbox_id: int) -> None:
    """The default reaction: make the mailbox due and hand its poll to a Celery worker."""
    from mailboxes import polling
    from mailboxes.tasks_inbound import poll_mailbox

    polling.wake(mailbox_id)
    poll_mailbox.delay(mailbox_id)


def poll_inline(mailbox_id: int) -> None:
    """Poll right here (single-process setups and tests)."""
    from mailboxes import polling

    polling.poll(mailbox_id)
    close_old_connections()


def _has_new_mail(responses) -> bool:
    return any(len(r) >= 2 and isinstance(r[1], bytes) and r[1].upper() in NEW_MAIL for r in responses)


def listen(mailbox_id: int, on_new_mail: Callable[[int], None], stop: threading.Event) -> None:
    """Listen on the mailbox's inbox until `stop` is set; call `on_new_mail(mailbox_id)` when mail arrives."""
    from mailboxes import imap

    failures = 0
    while not stop.is_set():
        try:
            close_old_connections()
            mailbox = Mailbox.objects.get(pk=mailbox_id)
            if not mailbox.is_active or not mailbox.tickets_enabled:
                stop.wait(60)
                continue
            with imap.session(mailbox) as client:
                client.select_folder(mailbox.folder_inbox, readonly=True)
                failures = 0
                on_new_mail(mailbox_id)  # catch up on mail that came while we were away
                _idle_loop(client, mailbox_id, on_new_mail, stop)
        except Mailbox.DoesNotExist:
            return
        except Exception as exc:
            failures += 1
            delay = min(5 * 2 ** min(failures, 7), 600) * random.uniform(0.8, 1.2)
            log.warning("IDLE on mailbox %s failed (%s); retrying in %.0fs", mailbox_id, exc, delay)
            stop.wait(delay)


def _start_idle(client) -> list:
    """Enter IDLE; returns an EXISTS that the server sent together with its confirmation.

    Two places idle_check() never looks: imaplib files an untagged response that came before the "+" away,
    and a line that came in the same packet as the "+" waits in the socket's read buffer while idle_check
    polls the (empty) socket. Either way the mail would wait for the next one; report it now instead.
    """
    client.idle()
    stored = getattr(client._imap, "untagged_responses", {})
    early = [(None, key.encode()) for key in ("EXISTS", "RECENT") if stored.pop(key, None)]
    if not early and _buffered(client):
        early = [(None, b"EXISTS")]  # maybe: idle_done() below reads it, and a poll costs little
    return early


def _buffered(client) -> bool:
    """True when a response is already waiting in the client's read buffer."""
    sock = client.socket()
    sock.setblocking(False)
    try:
        return bool(client._imap.file.peek(1))
    except (BlockingIOError, OSError, ValueError):
        return False
    finally:
        sock.setblocking(True)
        client._set_read_timeout()


def _idle_loop(client, mailbox_id: int, on_new_mail: Callable[[int], None], stop: threading.Event) -> None:
    early = _start_idle(client)
    since = time.monotonic()
    try:
        while not stop.is_set():
            responses = early or client.idle_check(timeout=CHECK_SECONDS)
            early = []
            reissue = time.monotonic() - since > REISSUE_SECONDS
            if not (_has_new_mail(responses) or reissue):
                continue
            _, more = client.idle_done()
            if _has_new_mail(responses) or _has_new_mail(more):
                # Poll until a NOOP reports nothing new: mail that lands while we poll (the server tells us
                # between commands, not during IDLE) is not left waiting for the next one.
                while not stop.is_set():
                    on_new_mail(mailbox_id)
                    _, noop = client.noop()
                    if not _has_new_mail(noop):
                        break
            early = _start_idle(client)
            since = time.monotonic()
    finally:
        try:
            client.idle_done()
        except Exception:  # the connection is going away anyway
            log.debug("idle_done failed on mailbox %s", mailbox_id)


class Listener:
    """One IDLE thread per active mailbox; picks up new mailboxes every minute."""

    def __init__(self, on_new_mail: Callable[[int], None], mailbox_ids: list[int] | None = None) -> None:
        self.on_new_mail = on_new_mail
        self.only = mailbox_ids
        self.stop = threading.Event()
        self.threads: dict[int, threading.Thread] = {}

    def _wanted(self) -> list[int]:
        qs = Mailbox.objects.active().filter(tickets_enabled=True)
        if self.only:
            qs = qs.filter(pk__in=self.only)
        return list(qs.values_list("pk", flat=True))

    def run(self) -> None:
        while not self.stop.is_set():
            for pk in self._wanted():
                thread = self.threads.get(pk)
                if thread is None or not thread.is_alive():
                    thread = threading.Thread(
                        target=listen, args=(pk, self.on_new_mail, self.stop), name=f"idle-{pk}", daemon=True
                    )
                    thread.start()
                    self.threads[pk] = thread
            close_old_connections()
            self.stop.wait(60)
