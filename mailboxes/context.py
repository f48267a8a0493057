"""Template context for the app shell: mailboxes that need an admin to reconnect them (the banner)."""

from django.http import HttpRequest

from mailboxes.models import Health, Mailbox


def reconnect_banner(request: HttpRequest) -> dict:
    membership = getattr(request, "membership", None)
    if membership is None or not membership.is_admin:
        return {}

    def needing_reconnect():
        return list(
            Mailbox.objects.for_tenant(request.tenant)
            .filter(health=Health.NEEDS_RECONNECT)
            .only("pk", "name", "email", "auth_method", "tenant_id")
        )

    return {"mailboxes_needing_reconnect": needing_reconnect}
