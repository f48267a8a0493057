"""Access to mailboxes from views: one function, filtering in the query."""

from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from mailboxes.models import ConnectionTest, Mailbox


def get_mailbox(request: HttpRequest, mailbox_id: int) -> Mailbox:
    """The mailbox if it belongs to the current tenant; 404 otherwise (views add admin_required for 403)."""
    return get_object_or_404(
        Mailbox.objects.for_tenant(request.tenant).select_related("tenant"), pk=mailbox_id
    )


def get_connection_test(request: HttpRequest, mailbox: Mailbox, test_id: int) -> ConnectionTest:
    return get_object_or_404(
        ConnectionTest.objects.filter(tenant=request.tenant, mailbox=mailbox), pk=test_id
    )
