"""Creating workspaces (tenants) and their first owner."""

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from accounts.models import RESERVED_SLUGS, Membership, Role, Tenant, User


class TenantExists(Exception):
    """The slug is taken (or reserved)."""


def suggest_slug(name: str) -> str:
    return slugify(name)[:40].strip("-") or "workspace"


@transaction.atomic
def create_tenant(
    *, name: str, slug: str, owner: User, timezone: str = "UTC", language: str = "en"
) -> Tenant:
    """A new tenant with `owner` as its owner; TenantExists if the slug is taken or reserved."""
    if slug in RESERVED_SLUGS:
        raise TenantExists(f"The address “{slug}” is reserved. Choose another one.")
    try:
        with transaction.atomic():
            tenant = Tenant.objects.create(name=name, slug=slug, timezone=timezone, language=language)
    except IntegrityError:
        raise TenantExists(f"The address “{slug}” is already taken. Choose another one.") from None
    Membership.objects.create(tenant=tenant, user=owner, role=Role.OWNER)
    return tenant
