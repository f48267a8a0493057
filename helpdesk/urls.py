from django.urls import include, path

from helpdesk import health

tenant_patterns = [
    path("", include("tickets.urls")),
    path("", include("accounts.urls_tenant")),
    path("settings/", include("mailboxes.urls")),
    path("settings/quarantine/", include("mailboxes.urls_quarantine")),
    path("settings/", include("mailboxes.urls_outbound")),
    path("settings/", include("tickets.urls_admin")),
    path("reports/", include("tickets.urls_reports")),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include("accounts.urls")),
    path("oauth/", include("mailboxes.urls_oauth")),
    path("<slug:tenant_slug>/", include(tenant_patterns)),
]
