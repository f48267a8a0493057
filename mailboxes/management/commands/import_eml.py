"""python manage.py import_eml --mailbox ID FILE...: feed raw .eml files through the inbound pipeline."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from mailboxes import inbound
from mailboxes.models import Mailbox
from tickets import intake


class Command(BaseCommand):
    help = "Import raw RFC 5322 files (migrations, replays) exactly like mail fetched from the mailbox."

    def add_arguments(self, parser):
        parser.add_argument("--mailbox", type=int, required=True)
        parser.add_argument("--history", action="store_true", help="Import as history: no auto-replies.")
        parser.add_argument("files", nargs="+")

    def handle(self, *args, **options):
        mailbox = Mailbox.objects.select_related("tenant").filter(pk=options["mailbox"]).first()
        if mailbox is None:
            raise CommandError(f"No mailbox with id {options['mailbox']}.")
        counts: dict[str, int] = {}
        context = intake.Context()
        for name in options["files"]:
            path = Path(name)
            try:
                raw = path.read_bytes()
            except OSError as exc:
                self.stderr.write(f"{name}: cannot read ({exc.strerror})")
                counts["unreadable"] = counts.get("unreadable", 0) + 1
                continue
            row = inbound.record_raw(raw, mailbox=mailbox, is_history=options["history"])
            outcome = intake.receive(row, raw, context=context)
            counts[outcome.kind] = counts.get(outcome.kind, 0) + 1
            detail = f" ({outcome.reason})" if outcome.reason else ""
            self.stdout.write(f"{name}: {outcome.kind}{detail}")
        self.stdout.write("summary: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
