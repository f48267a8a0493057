"""The OAuth redirect URI is one fixed URL for all tenants (providers need it registered); `state` carries the rest."""

from django.urls import path

from mailboxes import views

app_name = "oauth"
urlpatterns = [
    path("callback/", views.callback, name="callback"),
]
