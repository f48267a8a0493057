"""Template context for the app shell: the user's workspaces for the tenant switcher."""

from dataclasses import dataclass

from django.http import HttpRequest

from accounts.access import tenant_reverse
from accounts.models import Membership, Role, Tenant


@dataclass(frozen=True)
class Workspace:
    """One entry of the tenant switcher."""

    name: str
    role: str
    url: str
    is_current: bool


def shell(request: HttpRequest) -> dict:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    if getattr(request, "membership", None) is None:
        return {}

    def workspaces() -> list[Workspace]:
        # Plain values, not Membership and Tenant objects: every page of the app renders this menu.
        rows = (
            Membership.objects.filter(user=request.user)
            .order_by("tenant__name")
            .values_list("tenant_id", "tenant__slug", "tenant__name", "role")
        )
        return [
            Workspace(
                name=name,
                role=Role(role).label,
                url=tenant_reverse(Tenant(pk=tenant_id, slug=slug), "tickets:inbox"),
                is_current=tenant_id == request.tenant.pk,
            )
            for tenant_id, slug, name, role in rows
        ]

    return {"workspaces": workspaces}
