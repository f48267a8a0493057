from django.urls import include, path

from helpdesk import health

tenant_patterns = [
    path("", include("tickets.urls")),
    path("", include("accounts.urls_tenant")),
    path("settings/", include("mailboxes.urls")),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include("accounts.urls")),
    path("oauth/", include("mailboxes.urls_oauth")),
    path("<slug:tenant_slug>/", include(tenant_patterns)),
]
