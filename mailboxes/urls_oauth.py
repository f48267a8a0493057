"""The OAuth redirect URI is one fixed URL for all tenants (providers need it registered); `state` carries the rest."""

app_name = "oauth"
urlpatterns: list = []
