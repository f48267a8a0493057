"""Add a password (IMAP/SMTP) mailbox from the command line, for ops; prints the new mailbox's id."""

import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Tenant
from mailboxes import lifecycle
from mailboxes.models import AuthMethod, Mailbox, Provider, Security

SECURITY = [s.value for s in Security]


class Command(BaseCommand):
    help = "Add an IMAP/SMTP mailbox to a tenant and print its id."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="The tenant's slug.")
        parser.add_argument("--email", required=True)
        parser.add_argument("--name", default="", help="Display name (default: the address).")
        parser.add_argument(
            "--key", default="", help="Short key, at most 5 letters (default: from the address)."
        )
        parser.add_argument("--imap-host", required=True)
        parser.add_argument("--imap-port", type=int, default=993)
        parser.add_argument("--imap-security", choices=SECURITY, default="ssl")
        parser.add_argument("--smtp-host", required=True)
        parser.add_argument("--smtp-port", type=int, default=587)
        parser.add_argument("--smtp-security", choices=SECURITY, default="starttls")
        parser.add_argument(
            "--username", default="", help="Sign-in name for IMAP and SMTP (default: the address)."
        )
        parser.add_argument(
            "--password-file", required=True, help="File holding the password ('-' reads standard input)."
        )
        parser.add_argument(
            "--allow-private-hosts", action="store_true", help="Allow servers on private networks."
        )
        parser.add_argument(
            "--allow-self-signed", action="store_true", help="Do not verify TLS certificates."
        )
        parser.add_argument("--default", action="store_true", help="Make it the default sending account.")
        parser.add_argument("--no-test", action="store_true", help="Do not queue a connection test.")

    def handle(self, *args, **o):
        tenant = Tenant.objects.filter(slug=o["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with the slug {o['tenant']!r}.")
        password = self._password(o["password_file"])
        email = o["email"].strip().lower()
        if Mailbox.objects.filter(tenant=tenant, email__iexact=email).exists():
            raise CommandError(f"{email} is already a mailbox of {tenant.slug}.")
        mailbox = Mailbox(
            tenant=tenant,
            email=email,
            name=o["name"] or email,
            key=(o["key"] or lifecycle.unique_key(tenant, email)).upper(),
            provider=Provider.OTHER,
            auth_method=AuthMethod.PASSWORD,
            imap_host=o["imap_host"],
            imap_port=o["imap_port"],
            imap_security=o["imap_security"],
            imap_username=o["username"],
            imap_password=password,
            smtp_host=o["smtp_host"],
            smtp_port=o["smtp_port"],
            smtp_security=o["smtp_security"],
            smtp_same_credentials=True,
            allow_private_hosts=o["allow_private_hosts"],
            allow_self_signed=o["allow_self_signed"],
        )
        try:
            mailbox.full_clean(exclude=["imap_password", "smtp_password"])
        except ValidationError as exc:
            problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            raise CommandError(f"Invalid mailbox: {problems}") from None
        with transaction.atomic():
            mailbox.save()
            if o["default"] or not Mailbox.objects.filter(tenant=tenant, is_default=True).exists():
                lifecycle.set_default(mailbox)
            if not o["no_test"]:
                lifecycle.schedule_test(mailbox, reason="cli")
        self.stdout.write(str(mailbox.pk))

    def _password(self, path: str) -> str:
        try:
            raw = sys.stdin.read() if path == "-" else Path(path).read_text()
        except OSError as exc:
            raise CommandError(f"Cannot read the password file: {exc.strerror}") from None
        password = raw.rstrip("\r\n")
        if not password:
            raise CommandError("The password file is empty.")
        return password
