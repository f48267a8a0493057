"""The OAuth2/OIDC identity provider fixture: start ``tests/rig/oauth_server`` and drive it from tests.

Tests get real tokens through the same authorization-code + PKCE flow the helpdesk runs against Microsoft
and Google (``obtain_tokens``), and can break them afterwards (``revoke_all``, ``expire_access_tokens``) to
test refresh and re-consent paths. Dovecot and the aiosmtpd server validate XOAUTH2 tokens by introspecting
them here, so a revoked token really fails at IMAP/SMTP login.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from tests.rig import procs
from tests.rig.oauth_server import DEFAULT_USERS, default_password

REPO_ROOT = Path(__file__).resolve().parents[2]

DEFAULT_SCOPES = (
    "openid",
    "email",
    "profile",
    "offline_access",
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "https://outlook.office.com/SMTP.Send",
)
# Any port is accepted on a loopback redirect URI (RFC 8252); nothing needs to listen there for the headless
# flow, which reads the code from the Location header.
DEFAULT_REDIRECT_URI = "http://127.0.0.1/oauth/callback/"


class OAuthFlowError(AssertionError):
    """A step of the authorization-code flow did not do what a real provider would do."""


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class OAuthServer:
    """A running test identity provider (django-oauth-toolkit) and helpers to use and break its tokens."""

    base_url: str
    client_id: str = "helpdesk-client"
    client_secret: str = "helpdesk-secret"
    # Resource-server credentials for RFC 7662 introspection (what Dovecot and aiosmtpd use).
    introspection_client_id: str = "dovecot"
    introspection_client_secret: str = "dovecot-secret"
    redirect_uri: str = DEFAULT_REDIRECT_URI
    users: dict[str, str] = field(default_factory=dict, compare=False)
    control_token: str = field(default="", repr=False)
    process: procs.Process | None = field(default=None, repr=False, compare=False)

    # --- endpoints ------------------------------------------------------------------------------------------
    @property
    def issuer(self) -> str:
        return f"{self.base_url}/o"

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/o/authorize/"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/o/token/"

    @property
    def userinfo_url(self) -> str:
        return f"{self.base_url}/o/userinfo/"

    @property
    def revoke_url(self) -> str:
        return f"{self.base_url}/o/revoke_token/"

    @property
    def introspect_url(self) -> str:
        return f"{self.base_url}/o/introspect/"

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}/o/.well-known/jwks.json"

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}/o/.well-known/openid-configuration"

    # --- state changes (test-only control endpoints) ----------------------------------------------------
    def _control(self, action: str, **data: Any) -> dict[str, Any]:
        r = requests.post(
            f"{self.base_url}/rig/{action}/",
            json=data,
            headers={"X-Rig-Token": self.control_token},
            timeout=10,
        )
        r.raise_for_status()
        return r.json()

    def add_user(self, email: str, password: str | None = None) -> str:
        """Create or update a user (username = email); returns the password (default: local part + "pw")."""
        password = password or default_password(email)
        self._control("add-user", username=email, password=password, email=email)
        self.users[email] = password
        return password

    def revoke_all(self, username: str) -> dict[str, int]:
        """Revoke every refresh and access token of ``username`` (as if the user revoked the app's consent)."""
        return self._control("revoke-all", username=username)

    def expire_access_tokens(self, username: str) -> int:
        """Move ``expires`` of the user's access tokens into the past; refresh tokens stay usable."""
        return self._control("expire-access-tokens", username=username)["access_tokens"]

    def register_redirect_uri(self, uri: str, client_id: str | None = None) -> None:
        """Allow another redirect URI. Loopback http URIs need no registration for a new *port*, only path."""
        self._control("register-redirect-uri", client_id=client_id or self.client_id, uri=uri)

    # --- token endpoint helpers -----------------------------------------------------------------------------
    def authorization_url(
        self, *, scopes: Iterable[str], state: str, code_challenge: str, redirect_uri: str | None = None
    ) -> str:
        """The URL a browser would open for "Connect mailbox"."""
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri or self.redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        return f"{self.authorize_url}?{urlencode(query)}"

    def obtain_tokens(
        self,
        username: str,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        *,
        password: str | None = None,
        redirect_uri: str | None = None,
    ) -> dict[str, Any]:
        """Run the full authorization-code + PKCE flow headlessly (login form, consent) and return the token
        response (``access_token``, ``refresh_token``, ``id_token``, ``expires_in``, ``scope``...)."""
        redirect_uri = redirect_uri or self.redirect_uri
        password = password or self.users.get(username) or default_password(username)
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(16)
        with requests.Session() as s:
            url = self.authorization_url(
                scopes=scopes, state=state, code_challenge=challenge, redirect_uri=redirect_uri
            )
            r = s.get(url, timeout=10)
            if "/accounts/login/" not in r.url:
                raise OAuthFlowError(f"authorize did not redirect to the login form: {r.status_code} {r.url}")
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
            if 'name="allow"' not in r.text:
                raise OAuthFlowError(f"no consent page after login (wrong password?): {r.text[:300]}")
            form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', r.text))
            form.update(allow="Authorize", csrfmiddlewaretoken=_csrf(r.text))
            r = s.post(r.url, data=form, headers={"Referer": r.url}, allow_redirects=False, timeout=10)
            location = r.headers.get("Location", "")
            query = parse_qs(urlsplit(location).query)
            if not location.startswith(redirect_uri.split("?")[0]) or query.get("state") != [state]:
                raise OAuthFlowError(f"unexpected redirect after consent: {r.status_code} {location}")
            if "code" not in query:
                raise OAuthFlowError(f"no code in the redirect: {location}")
        return self.token_request(
            grant_type="authorization_code",
            code=query["code"][0],
            redirect_uri=redirect_uri,
            code_verifier=verifier,
        )

    def token_request(self, **data: str) -> dict[str, Any]:
        """POST to the token endpoint with the helpdesk's client credentials; raises on an error response."""
        r = requests.post(self.token_url, data=data, auth=(self.client_id, self.client_secret), timeout=10)
        if r.status_code != 200:
            raise OAuthFlowError(f"token endpoint said {r.status_code}: {r.text}")
        return r.json()

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        """Exchange a refresh token (rotation: the answer carries a new refresh token, the old one dies)."""
        return self.token_request(grant_type="refresh_token", refresh_token=refresh_token)

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662 introspection as a resource server sees it (``{"active": false}`` for dead tokens)."""
        r = requests.post(
            self.introspect_url,
            data={"token": token},
            auth=(self.introspection_client_id, self.introspection_client_secret),
            timeout=10,
        )
        r.raise_for_status()
        return r.json()

    def revoke(self, token: str, token_type_hint: str = "access_token") -> None:
        """RFC 7009 revocation with the helpdesk's client credentials."""
        r = requests.post(
            self.revoke_url,
            data={"token": token, "token_type_hint": token_type_hint},
            auth=(self.client_id, self.client_secret),
            timeout=10,
        )
        r.raise_for_status()


def _csrf(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    if not match:
        raise OAuthFlowError(f"no CSRF token in page: {html[:300]}")
    return match.group(1)


def start_oauth_server(root: Path) -> OAuthServer:
    """Start the provider in ``root`` (its SQLite DB, signing key and log live there)."""
    root.mkdir(parents=True, exist_ok=True)
    ready_file = root / "ready"
    control_token = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.rig.oauth_server.settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "RIG_OAUTH_DB": str(root / "oauth.sqlite3"),
        "RIG_OAUTH_KEY_PATH": str(root / "oidc.key"),
        "RIG_OAUTH_READY_FILE": str(ready_file),
        "RIG_OAUTH_CONTROL_TOKEN": control_token,
    }
    proc = procs.spawn(
        "oauth-server",
        [sys.executable, "-m", "tests.rig.oauth_server.serve"],
        log_path=root / "server.log",
        cwd=REPO_ROOT,
        env=env,
        stop_timeout=2,
    )
    proc.wait_until(ready_file.exists, 90, "the ready file")
    base_url = f"http://127.0.0.1:{int(ready_file.read_text())}"
    users = {email: default_password(email) for email in DEFAULT_USERS}
    return OAuthServer(base_url=base_url, users=users, control_token=control_token, process=proc)
