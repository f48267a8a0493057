"""The tenant's own OAuth apps at Microsoft and Google (admins only): used instead of the deployment's app when
the company wants mailboxes connected through an app registered in its own directory or Google Cloud project.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.access import admin_required, tenant_reverse
from mailboxes.access import get_oauth_app
from mailboxes.forms import OAuthAppForm
from mailboxes.models import AuthMethod, Mailbox, OAuthApp


@admin_required
def oauth_apps(request):
    return _page(request)


@require_POST
@admin_required
def oauth_app_save(request, provider: str):
    app = get_oauth_app(request, provider)
    form = OAuthAppForm(request.POST, instance=app, prefix=provider)
    if not form.is_valid():
        return _page(request, bound=form)
    form.save()
    messages.success(
        request, f"Your own {app.get_provider_display()} app is saved. New connections sign in through it."
    )
    return redirect(tenant_reverse(request.tenant, "mailboxes:oauth_apps"))


@require_POST
@admin_required
def oauth_app_clear(request, provider: str):
    app = get_oauth_app(request, provider)
    if app.pk is not None:
        app.delete()
        messages.success(
            request,
            f"Your own {app.get_provider_display()} app is removed; the helpdesk's app is used again.",
        )
    return redirect(tenant_reverse(request.tenant, "mailboxes:oauth_apps"))


def _page(request, bound: OAuthAppForm | None = None):
    providers = []
    for name, label in OAuthApp.provider_labels().items():
        app = get_oauth_app(request, name)
        form = (
            bound if bound is not None and bound.prefix == name else OAuthAppForm(instance=app, prefix=name)
        )
        providers.append(
            {
                "name": name,
                "label": label,
                "app": app if app.pk else None,
                "form": form,
                "deployment_app": bool(settings.OAUTH_PROVIDERS.get(name, {}).get("client_id")),
                "connected": Mailbox.objects.for_tenant(request.tenant)
                .filter(provider=name, auth_method=AuthMethod.OAUTH2)
                .count(),
            }
        )
    context = {"providers": providers, "redirect_uri": settings.OAUTH_REDIRECT_URI}
    return render(request, "mailboxes/oauth_apps.html", context)
