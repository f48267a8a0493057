"""python manage.py imap_idle [--mailbox ID] [--inline]: wake polls within a second of new mail (IMAP IDLE)."""

import signal

from django.core.management.base import BaseCommand

from mailboxes import idle


class Command(BaseCommand):
    help = "Hold an IMAP IDLE connection per mailbox and trigger its poll as soon as mail arrives."

    def add_arguments(self, parser):
        parser.add_argument("--mailbox", type=int, action="append", help="Only this mailbox id (repeatable).")
        parser.add_argument(
            "--inline", action="store_true", help="Poll in this process instead of enqueueing a Celery task."
        )

    def handle(self, *args, **options):
        listener = idle.Listener(
            idle.poll_inline if options["inline"] else idle.enqueue_poll, options["mailbox"]
        )
        signal.signal(signal.SIGTERM, lambda *_: listener.stop.set())
        self.stdout.write("imap_idle: listening", ending="\n")
        self.stdout.flush()
        try:
            listener.run()
        except KeyboardInterrupt:
            listener.stop.set()
