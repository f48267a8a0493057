"""Settings → Mailboxes → OAuth apps: a tenant's own Microsoft/Google client instead of the deployment's."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection

from accounts.access import tenant_reverse
from mailboxes import oauth
from mailboxes.models import OAuthApp
from tests.mailboxes.conftest import client_for

pytestmark = pytest.mark.django_db

SECRET = "tenant-Secret~value.0123456789-Qx7z"
CLIENT_ID = "1234-tenant.apps.googleusercontent.com"


@pytest.fixture
def providers(settings):
    """The deployment has a Microsoft app but no Google app."""
    configured = {k: dict(v) for k, v in settings.OAUTH_PROVIDERS.items()}
    configured["microsoft"].update(client_id="platform-ms-id", client_secret="platform-ms-secret")
    configured["google"].update(client_id="", client_secret="")
    settings.OAUTH_PROVIDERS = configured
    return configured


def page_url(tenant) -> str:
    return tenant_reverse(tenant, "mailboxes:oauth_apps")


def save(client, tenant, provider: str, **fields):
    data = {f"{provider}-{name}": value for name, value in fields.items()}
    return client.post(tenant_reverse(tenant, "mailboxes:oauth_app_save", provider), data)


def stored_rows() -> str:
    """Every column of every OAuth app row, as the database stores it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM mailboxes_oauthapp")
        return repr(cursor.fetchall())


def test_admin_sets_own_google_app_and_connecting_signs_in_through_it(tenant, as_admin, providers):
    assert not oauth.provider_config("google", tenant).configured
    response = save(as_admin, tenant, "google", client_id=f"  {CLIENT_ID} ", client_secret=SECRET)
    assert response.status_code == 302 and response["Location"] == page_url(tenant)
    app = OAuthApp.objects.get(tenant=tenant, provider="google")
    assert (app.client_id, app.client_secret) == (CLIENT_ID, SECRET)
    config = oauth.provider_config("google", tenant)
    assert (config.client_id, config.client_secret) == (CLIENT_ID, SECRET)

    connect = as_admin.post(tenant_reverse(tenant, "mailboxes:connect", "google"))
    assert connect.status_code == 302
    assert parse_qs(urlsplit(connect["Location"]).query)["client_id"] == [CLIENT_ID]


def test_secret_is_encrypted_at_rest_and_never_shown_back(tenant, as_admin, providers):
    save(as_admin, tenant, "google", client_id=CLIENT_ID, client_secret=SECRET)
    stored = stored_rows()
    assert SECRET not in stored and "fernet:" in stored
    page = as_admin.get(page_url(tenant)).content.decode()
    assert SECRET not in page
    assert CLIENT_ID in page
    assert "Secret saved, ends in <code>…Qx7z</code>" in page
    assert repr(OAuthApp.objects.get().client_secret) == "Secret('********')"


def test_short_secret_is_not_even_hinted_at(tenant, as_admin, providers):
    save(as_admin, tenant, "google", client_id=CLIENT_ID, client_secret="short-secret")
    page = as_admin.get(page_url(tenant)).content.decode()
    assert "Secret saved." in page and "ends in" not in page and "short-secret" not in page


def test_empty_secret_keeps_the_saved_one(tenant, as_admin, providers):
    save(as_admin, tenant, "google", client_id=CLIENT_ID, client_secret=SECRET)
    response = save(
        as_admin, tenant, "google", client_id="5678-new.apps.googleusercontent.com", client_secret=""
    )
    assert response.status_code == 302
    app = OAuthApp.objects.get()
    assert (app.client_id, app.client_secret) == ("5678-new.apps.googleusercontent.com", SECRET)


def test_a_new_app_needs_a_secret_and_a_clean_client_id(tenant, as_admin, providers):
    response = save(as_admin, tenant, "google", client_id="has spaces", client_secret="")
    assert response.status_code == 200
    page = response.content.decode()
    assert "without spaces" in page and "This field is required." in page
    assert not OAuthApp.objects.exists()


def test_microsoft_directory_goes_into_the_sign_in_urls(tenant, as_admin, providers):
    save(
        as_admin,
        tenant,
        "microsoft",
        client_id="ms-tenant-id",
        client_secret=SECRET,
        directory="contoso.example",
    )
    config = oauth.provider_config("microsoft", tenant)
    assert "/contoso.example/oauth2/v2.0/authorize" in config.authorize_url
    assert "/contoso.example/oauth2/v2.0/token" in config.token_url


def test_directory_that_would_change_the_url_path_is_refused(tenant, as_admin, providers):
    response = save(
        as_admin, tenant, "microsoft", client_id="ms-tenant-id", client_secret=SECRET, directory="../evil"
    )
    assert response.status_code == 200
    assert "directory (tenant) ID" in response.content.decode()
    assert not OAuthApp.objects.exists()


def test_google_form_has_no_directory_field(tenant, as_admin, providers):
    page = as_admin.get(page_url(tenant)).content.decode()
    assert 'name="microsoft-directory"' in page
    assert 'name="google-directory"' not in page


def test_admin_clears_own_app_and_the_deployments_app_is_used_again(tenant, as_admin, providers):
    save(as_admin, tenant, "microsoft", client_id="ms-tenant-id", client_secret=SECRET)
    assert oauth.provider_config("microsoft", tenant).client_id == "ms-tenant-id"
    response = as_admin.post(tenant_reverse(tenant, "mailboxes:oauth_app_clear", "microsoft"))
    assert response.status_code == 302
    assert not OAuthApp.objects.exists()
    assert oauth.provider_config("microsoft", tenant).client_id == "platform-ms-id"
    assert "The helpdesk's app" in as_admin.get(page_url(tenant)).content.decode()


def test_unknown_provider_is_404(tenant, as_admin, providers):
    assert save(as_admin, tenant, "yahoo", client_id="x", client_secret=SECRET).status_code == 404
    assert as_admin.post(tenant_reverse(tenant, "mailboxes:oauth_app_clear", "yahoo")).status_code == 404


def test_agent_gets_403_and_changes_nothing(tenant, as_agent, providers):
    OAuthApp.objects.create(tenant=tenant, provider="google", client_id=CLIENT_ID, client_secret=SECRET)
    assert as_agent.get(page_url(tenant)).status_code == 403
    assert (
        save(as_agent, tenant, "google", client_id="agent-id", client_secret="agent-secret").status_code
        == 403
    )
    assert as_agent.post(tenant_reverse(tenant, "mailboxes:oauth_app_clear", "google")).status_code == 403
    assert OAuthApp.objects.get().client_id == CLIENT_ID


def test_another_tenant_neither_sees_nor_touches_the_app(tenant, as_admin, outsider, providers):
    OAuthApp.objects.create(tenant=tenant, provider="google", client_id=CLIENT_ID, client_secret=SECRET)
    as_outsider = client_for(outsider)
    own = outsider.memberships.get().tenant
    assert as_outsider.get(page_url(tenant)).status_code == 404
    assert save(as_outsider, tenant, "google", client_id="x", client_secret=SECRET).status_code == 404
    # On their own tenant's page the app is not there, and clearing theirs leaves ours alone.
    page = as_outsider.get(page_url(own)).content.decode()
    assert CLIENT_ID not in page and "Your own app" not in page
    assert as_outsider.post(tenant_reverse(own, "mailboxes:oauth_app_clear", "google")).status_code == 302
    save(as_outsider, own, "google", client_id="globex-id", client_secret="globex-secret-0123456789")
    assert OAuthApp.objects.get(tenant=tenant).client_id == CLIENT_ID
    assert oauth.provider_config("google", tenant).client_id == CLIENT_ID
    assert "globex-id" not in as_admin.get(page_url(tenant)).content.decode()


def test_mailbox_pages_link_to_the_oauth_apps(tenant, as_admin, providers):
    url = page_url(tenant)
    assert url in as_admin.get(tenant_reverse(tenant, "mailboxes:list")).content.decode()
    add_page = as_admin.get(tenant_reverse(tenant, "mailboxes:add")).content.decode()
    assert f"{url}#google" in add_page  # the deployment has no Google app: offer the tenant's own
