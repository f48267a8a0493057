"""Template context for the app shell: the user's workspaces for the tenant switcher."""

from django.http import HttpRequest

from accounts.models import Membership


def shell(request: HttpRequest) -> dict:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    if getattr(request, "membership", None) is None:
        return {}

    def workspaces():
        return list(
            Membership.objects.filter(user=request.user).select_related("tenant").order_by("tenant__name")
        )

    return {"workspaces": workspaces}
