"""Create a demo tenant with an owner on first run (`make run`), and print how to log in."""

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand
from django.urls import reverse

from accounts import tenancy
from accounts.models import Tenant, User

DEMO_EMAIL = "owner@demo.test"


class Command(BaseCommand):
    help = "Create the demo tenant and owner if there is no tenant yet; print the login details."

    def handle(self, *args, **options):
        credentials = settings.VAR_DIR / "demo-credentials.txt"
        login_url = f"{settings.SITE_URL}{reverse('login')}"
        if Tenant.objects.exists():
            hint = credentials.read_text().strip() if credentials.exists() else "use your own account"
            self.stdout.write(f"Helpdesk at {login_url} ({hint})")
            return
        password = secrets.token_urlsafe(12)
        owner = User.objects.create_user(DEMO_EMAIL, password, name="Demo Owner")
        tenancy.create_tenant(name="Demo Company", slug="demo", owner=owner)
        credentials.parent.mkdir(parents=True, exist_ok=True)
        credentials.write_text(f"email {DEMO_EMAIL}, password {password}\n")
        credentials.chmod(0o600)
        bar = "=" * 64
        self.stdout.write(
            f"{bar}\n Demo workspace created.\n  URL:      {login_url}\n  Email:    {DEMO_EMAIL}\n"
            f"  Password: {password}\n (saved in {credentials})\n{bar}"
        )
