"""Resolves the tenant from the URL once per request and refuses everyone who is not a member."""

from django.contrib.auth.views import redirect_to_login
from django.http import Http404

from accounts.models import Membership


class TenantMiddleware:
    """Sets `request.tenant` and `request.membership` for URLs under `/<tenant_slug>/`.

    The slug is taken out of the view's kwargs, so views read `request.tenant` instead. Anonymous visitors
    are sent to the login page; a signed-in user who is not a member gets 404, the same answer as for a
    tenant that does not exist, so outsiders learn nothing about which tenants exist.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.tenant = None
        request.membership = None
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        slug = view_kwargs.pop("tenant_slug", None)
        if slug is None:
            return None
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        membership = (
            Membership.objects.select_related("tenant").filter(tenant__slug=slug, user=request.user).first()
        )
        if membership is None:
            raise Http404("No such tenant.")
        request.tenant = membership.tenant
        request.membership = membership
        if request.session.get("last_tenant") != slug:
            request.session["last_tenant"] = slug
        return None
