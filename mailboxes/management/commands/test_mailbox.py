"""Run a mailbox's connection test now and print the result in plain words; exit status 0 (works) or 1."""

from django.core.management.base import BaseCommand, CommandError

from mailboxes import connection_test
from mailboxes.models import ConnectionTest, Mailbox, TestStatus


class Command(BaseCommand):
    help = "Test a mailbox's IMAP and SMTP connection (sends a test email to the mailbox itself)."

    def add_arguments(self, parser):
        parser.add_argument("mailbox_id", type=int)
        parser.add_argument("--also-send-to", default="", help="Also send the test email to this address.")

    def handle(self, *args, **options):
        mailbox = Mailbox.objects.select_related("tenant").filter(pk=options["mailbox_id"]).first()
        if mailbox is None:
            raise CommandError(f"No mailbox with id {options['mailbox_id']}.")
        self.stdout.write(f"Testing {mailbox.email} ({mailbox.tenant.slug})…")
        test = ConnectionTest.objects.create(
            tenant=mailbox.tenant, mailbox=mailbox, reason="cli", also_send_to=options["also_send_to"]
        )
        connection_test.run(test)
        self.stdout.write(connection_test.summary(test))
        if test.status != TestStatus.PASSED:
            raise CommandError("The connection test failed.", returncode=1)
