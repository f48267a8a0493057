"""`python manage.py reindex_tickets [--tenant SLUG] [--missing]`: rebuild the full-text search index."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Tenant
from tickets import search
from tickets.models import Ticket


class Command(BaseCommand):
    help = (
        "Rebuild tickets' search vectors (PostgreSQL), e.g. after an import or a change of what is indexed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Only this workspace (its slug).")
        parser.add_argument("--missing", action="store_true", help="Only tickets that were never indexed.")

    def handle(self, *args, tenant=None, missing=False, **options):
        if not search.uses_postgres():
            self.stdout.write("Not on PostgreSQL: search works without an index here; nothing to do.")
            return
        qs = Ticket.objects.defer("search_vector").select_related("requester").order_by("pk")
        if tenant:
            found = Tenant.objects.filter(slug=tenant).first()
            if found is None:
                raise CommandError(f"No workspace with the address “{tenant}”.")
            qs = qs.filter(tenant=found)
        if missing:
            qs = qs.filter(search_vector__isnull=True)
        count = search.reindex_many(qs.iterator(chunk_size=500))
        self.stdout.write(self.style.SUCCESS(f"Reindexed {count} ticket{'s' if count != 1 else ''}."))
