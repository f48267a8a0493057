"""python manage.py poll_mailboxes --once [--mailbox ID]: run the whole inbound pipeline in this process."""

import json
from concurrent.futures import ThreadPoolExecutor, as_completed

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from mailboxes import polling
from mailboxes.models import Mailbox


class Command(BaseCommand):
    help = "Poll mailboxes (fetch, store, process, after-import action) in this process and print a summary."
    # A worker, as Celery's are: the system checks (which import every view) belong to deploys and the web
    # server, not to each start of a poller.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="One round over the mailboxes, then exit.")
        parser.add_argument("--mailbox", type=int, action="append", help="Only this mailbox id (repeatable).")
        parser.add_argument(
            "--due", action="store_true", help="Only mailboxes whose poll interval has passed."
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON line per mailbox.")
        parser.add_argument("--parallel", type=int, default=4, help="Mailboxes polled at the same time.")
        parser.add_argument(
            "--interval", type=float, default=5.0, help="Seconds between rounds without --once."
        )

    def handle(self, *args, **options):
        import time

        polling.tune_malloc()
        while True:
            self._round(options)
            if options["once"]:
                peak = peak_rss_mb()
                if peak is not None:
                    self.stdout.write(f"peak RSS: {peak:.1f} MB")
                return
            time.sleep(options["interval"])

    def _round(self, options) -> None:
        if options["mailbox"]:
            ids = list(Mailbox.objects.filter(pk__in=options["mailbox"]).values_list("pk", flat=True))
            if not ids:
                raise CommandError("No such mailbox.")
        elif options["due"]:
            ids = polling.due_mailbox_ids()
        else:
            ids = list(Mailbox.objects.active().filter(tickets_enabled=True).values_list("pk", flat=True))
        if len(ids) == 1:
            self._report(polling.poll(ids[0]), options)
            return
        # Mailboxes are polled side by side: one that hangs until its timeout delays only itself.
        with ThreadPoolExecutor(max_workers=max(1, min(options["parallel"], len(ids)))) as pool:
            for future in as_completed([pool.submit(_poll, pk) for pk in ids]):
                self._report(future.result(), options)

    def _report(self, result, options) -> None:
        mailbox_id = result.mailbox_id
        if options["json"]:
            self.stdout.write(json.dumps(result.__dict__, default=str))
        elif not result.leased:
            self.stdout.write(f"mailbox {mailbox_id}: busy (another poller holds the lease)")
        else:
            summary = ", ".join(f"{n} {k}" for k, n in sorted(result.outcomes.items())) or "nothing new"
            line = f"mailbox {mailbox_id}: fetched {result.fetched}; {summary}; {result.seconds:.2f}s"
            if result.error:
                line += f"; ERROR: {result.error}"
            self.stdout.write(line)
        self.stdout.flush()


def _poll(mailbox_id: int) -> polling.PollResult:
    try:
        return polling.poll(mailbox_id)
    finally:
        connections.close_all()  # this thread's connection; the pool's threads end with the round


def peak_rss_mb() -> float | None:
    """This process's peak resident memory (VmHWM: since exec, unlike getrusage's ru_maxrss)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None
