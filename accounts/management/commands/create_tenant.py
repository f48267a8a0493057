"""Provision a tenant and its owner from the command line (ops)."""

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.urls import reverse

from accounts import tenancy
from accounts.models import User, slug_validator


class Command(BaseCommand):
    help = "Create a tenant with an owner account and print its login URL."

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--owner-password-file", required=True, type=Path)
        parser.add_argument("--owner-name", default="")

    def handle(self, *args, slug, name, owner_email, owner_password_file, owner_name, **options):
        try:
            slug_validator(slug)
        except ValidationError as exc:
            raise CommandError(f"Invalid slug {slug!r}: {exc.messages[0]}") from None
        try:
            password = owner_password_file.read_text().strip()
        except OSError as exc:
            raise CommandError(f"Cannot read the password file {owner_password_file}: {exc}") from None
        if not password:
            raise CommandError(f"The password file {owner_password_file} is empty.")
        with transaction.atomic():
            owner = User.objects.filter(email__iexact=owner_email).first()
            if owner is None:
                owner = User.objects.create_user(owner_email, password, name=owner_name)
            try:
                tenant = tenancy.create_tenant(name=name, slug=slug, owner=owner)
            except tenancy.TenantExists as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(f"Created tenant {tenant.slug} ({tenant.name}) with owner {owner.email}.")
        self.stdout.write(f"Log in at {settings.SITE_URL}{reverse('login')}")
