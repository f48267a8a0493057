"""Re-encrypt every stored credential with the newest key of FIELD_ENCRYPTION_KEYS.

Rotation: put a new key in front of FIELD_ENCRYPTION_KEYS (keep the old ones after it), restart, run this,
then remove the old keys.
"""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from mailboxes.vault import EncryptedTextField, reset_keys_cache


class Command(BaseCommand):
    help = "Re-encrypt passwords and OAuth tokens with the first key of FIELD_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        reset_keys_cache()
        total = 0
        for model in apps.get_models():
            fields = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
            if not fields:
                continue
            count = 0
            for obj in model._default_manager.only("pk", *fields).iterator(chunk_size=500):
                values = {name: getattr(obj, name) for name in fields if getattr(obj, name)}
                if values:
                    with transaction.atomic():
                        # get_prep_value encrypts the plain value again, under the current first key.
                        model._default_manager.filter(pk=obj.pk).update(**values)
                    count += 1
            total += count
            self.stdout.write(f"{model._meta.label}: {count} row{'s' if count != 1 else ''} re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"Done: {total} rows re-encrypted with the newest key."))
