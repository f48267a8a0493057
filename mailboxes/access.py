"""Access to mailboxes and the tenant's OAuth apps from views: one function each, filtering in the query."""

from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404

from mailboxes.models import ConnectionTest, Mailbox, OAuthApp


def get_mailbox(request: HttpRequest, mailbox_id: int) -> Mailbox:
    """The mailbox if it belongs to the current tenant; 404 otherwise (views add admin_required for 403)."""
    return get_object_or_404(
        Mailbox.objects.for_tenant(request.tenant).select_related("tenant"), pk=mailbox_id
    )


def get_connection_test(request: HttpRequest, mailbox: Mailbox, test_id: int) -> ConnectionTest:
    return get_object_or_404(
        ConnectionTest.objects.filter(tenant=request.tenant, mailbox=mailbox), pk=test_id
    )


def get_oauth_app(request: HttpRequest, provider: str) -> OAuthApp:
    """The current tenant's own app at `provider`, or a new unsaved one for it; 404 for an unknown provider."""
    if provider not in OAuthApp.provider_labels():
        raise Http404("Unknown provider.")
    app = OAuthApp.objects.filter(tenant=request.tenant, provider=provider).first()
    return app or OAuthApp(tenant=request.tenant, provider=provider)
