"""Fixtures of the mailbox tests: mailboxes on the rig's Dovecot, Postfix and aiosmtpd, DNS through dnsmasq,
and the OAuth providers pointed at the rig's authorization server."""

from __future__ import annotations

import itertools
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client, TestCase

from mailboxes.models import AuthMethod, Mailbox, Provider
from tests.rig.oauth import OAuthFlowError, _csrf

SUPPORT = "support@acme.test"


class CommittingClient(Client):
    """A test client whose requests run their on_commit callbacks (the test's transaction never commits).

    The connection test is queued with transaction.on_commit; with CELERY_TASK_ALWAYS_EAGER it then runs in
    the request, as a worker would run it right after the commit.
    """

    def request(self, **request):
        with TestCase.captureOnCommitCallbacks(execute=True):
            return super().request(**request)


def client_for(user) -> CommittingClient:
    client = CommittingClient()
    client.force_login(user)
    return client


@pytest.fixture
def as_admin(admin) -> CommittingClient:
    return client_for(admin)


@pytest.fixture
def as_agent(agent) -> CommittingClient:
    return client_for(agent)


@pytest.fixture
def as_outsider(outsider) -> CommittingClient:
    return client_for(outsider)


_keys = itertools.count(1)


@pytest.fixture
def rig_ca(settings, rig_tls):
    """The rig's servers present certificates of the rig's CA: trust it like a company CA."""
    settings.MAILBOX_CA_FILE = str(rig_tls.ca_path)
    return rig_tls.ca_path


@pytest.fixture
def private_ok(settings):
    """The rig's servers are on 127.0.0.1: allow private hosts, as ops would for an internal server."""
    settings.MAILBOX_ALLOW_PRIVATE_HOSTS = True


@pytest.fixture
def dns(settings, dns_server):
    """Resolve admin-entered names and autodiscovery through the rig's dnsmasq."""
    settings.DNS_RESOLVER_NAMESERVERS = [dns_server.host]
    settings.DNS_RESOLVER_PORT = dns_server.port
    settings.DNS_RESOLVER_TIMEOUT = 2.0
    return dns_server


def make_mailbox(tenant, **fields) -> Mailbox:
    n = next(_keys)
    values = {
        "tenant": tenant,
        "name": "Acme Support",
        "key": f"T{n}",
        "email": SUPPORT,
        "sender_name": "Acme Support",
        "imap_host": "127.0.0.1",
        "imap_security": "ssl",
        "imap_username": SUPPORT,
        "imap_password": "supportpw",
        "smtp_host": "127.0.0.1",
        "smtp_same_credentials": True,
        "connect_timeout": 5,
        "auth_timeout": 10,
    }
    values.update(fields)
    return Mailbox.objects.create(**values)


@pytest.fixture
def imap_mailbox(tenant, dovecot, smtp, rig_ca, private_ok) -> Mailbox:
    """support@acme.test: IMAP on Dovecot (SSL), SMTP on aiosmtpd (STARTTLS), password sign-in."""
    return make_mailbox(
        tenant, imap_port=dovecot.imaps_port, smtp_port=smtp.starttls_port, smtp_security="starttls"
    )


# --- OAuth ---------------------------------------------------------------------------------------------------


@pytest.fixture
def oauth_providers(settings, oauth_server, dovecot, postfix, rig_ca, private_ok):
    """Microsoft and Google pointed at the rig: DOT for OAuth, Dovecot for IMAP, Postfix for SMTP."""
    common = {
        "client_id": oauth_server.client_id,
        "client_secret": oauth_server.client_secret,
        "authorize_url": oauth_server.authorize_url,
        "token_url": oauth_server.token_url,
        "revocation_url": oauth_server.revoke_url,
        "imap_host": "127.0.0.1",
        "imap_port": dovecot.imaps_port,
        "imap_security": "ssl",
        "smtp_host": "127.0.0.1",
    }
    providers = {k: dict(v) for k, v in settings.OAUTH_PROVIDERS.items()}
    providers["microsoft"].update(
        common, userinfo_url="", smtp_port=postfix.submission_port, smtp_security="starttls"
    )
    providers["google"].update(
        common, userinfo_url=oauth_server.userinfo_url, smtp_port=postfix.smtps_port, smtp_security="ssl"
    )
    settings.OAUTH_PROVIDERS = providers
    settings.OAUTH_REDIRECT_URI = "http://127.0.0.1/oauth/callback/"
    return providers


def consent(oauth_server, authorize_url: str, username: str, password: str | None = None) -> str:
    """Sign in at the rig's provider and allow access, like a person would; return the redirect (callback) URL."""
    password = password or oauth_server.users.get(username) or username.split("@")[0] + "pw"
    with requests.Session() as s:
        r = s.get(authorize_url, timeout=10)
        if "/accounts/login/" not in r.url:
            raise OAuthFlowError(f"no login form: {r.status_code} {r.url}")
        r = s.post(
            r.url,
            data={
                "csrfmiddlewaretoken": _csrf(r.text),
                "username": username,
                "password": password,
                "next": parse_qs(urlsplit(r.url).query)["next"][0],
            },
            headers={"Referer": r.url},
            timeout=10,
        )
        import re

        form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', r.text))
        form.update(allow="Authorize", csrfmiddlewaretoken=_csrf(r.text))
        r = s.post(r.url, data=form, headers={"Referer": r.url}, allow_redirects=False, timeout=10)
        return r.headers["Location"]


def callback_path(location: str) -> str:
    """The path + query of the provider's redirect, to replay against the test client."""
    parts = urlsplit(location)
    return f"{parts.path}?{parts.query}"


def connect_via_client(
    client, tenant, oauth_server, provider: str, username: str, *, reconnect: Mailbox | None = None
):
    """Run the whole connect (or reconnect) flow with the Django test client and the real provider."""
    from accounts.access import tenant_reverse

    if reconnect is not None:
        start = client.post(tenant_reverse(tenant, "mailboxes:reconnect", reconnect.pk))
    else:
        start = client.post(tenant_reverse(tenant, "mailboxes:connect", provider))
    assert start.status_code == 302, start.content[:500]
    location = consent(oauth_server, start["Location"], username)
    return client.get(callback_path(location)), location


def oauth_mailbox(
    tenant, oauth_server, providers, provider: str = "microsoft", username: str = SUPPORT
) -> Mailbox:
    """A mailbox with real tokens from the rig's provider (the flow run headlessly by the rig helper)."""
    from datetime import timedelta

    from django.utils import timezone

    config = providers[provider]
    token = oauth_server.obtain_tokens(username, scopes=config["scopes"])
    return make_mailbox(
        tenant,
        email=username,
        imap_username=username,
        provider=provider,
        auth_method=AuthMethod.OAUTH2,
        imap_password="",
        imap_port=config["imap_port"],
        imap_security=config["imap_security"],
        smtp_port=config["smtp_port"],
        smtp_security=config["smtp_security"],
        oauth_access_token=token["access_token"],
        oauth_refresh_token=token["refresh_token"],
        oauth_expires_at=timezone.now() + timedelta(seconds=int(token["expires_in"])),
        oauth_scope=token.get("scope", ""),
    )


__all__ = [
    "SUPPORT",
    "Provider",
    "callback_path",
    "connect_via_client",
    "consent",
    "make_mailbox",
    "oauth_mailbox",
]
