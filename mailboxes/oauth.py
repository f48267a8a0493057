"""OAuth 2.0 for Microsoft and Google mailboxes (authlib): connect, keep the token fresh, XOAUTH2, revoke.

Connect: `start_connect()` remembers a flow (state, PKCE verifier, nonce) in the admin's session and returns
the provider's authorization URL; the provider sends the browser back to the one fixed callback URL, where
`finish_connect()` takes the flow out of the session (single use), exchanges the code and creates (or, for a
reconnect, restores) the mailbox.

Use: `access_token(mailbox)` returns a token that is valid for a while, refreshing it ahead of expiry. One
worker refreshes at a time (a lease taken with a conditional UPDATE, so it works on SQLite and PostgreSQL
without holding a transaction across the HTTP call); the others wait and use its result. When the provider
refuses the refresh token, the mailbox turns "needs reconnect", its admins get one email, and NeedsReconnect
is raised.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import smtplib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.access import tenant_reverse
from accounts.models import Membership, Tenant, User
from mailboxes.errors import NeedsReconnect, OAuthProviderError
from mailboxes.models import AuthMethod, Health, Mailbox, OAuthApp, Provider, Security

logger = logging.getLogger(__name__)

SESSION_KEY = "mailbox_oauth_flows"
FLOW_MAX_AGE = 15 * 60  # seconds a started connect flow stays usable
MAX_OPEN_FLOWS = 10
REFRESH_LEASE = timedelta(seconds=60)
# Answers of the token endpoint that mean "this refresh token will never work again": reconnect needed.
DEAD_GRANT_ERRORS = {"invalid_grant", "unauthorized_client", "interaction_required", "consent_required"}
LABELS = {Provider.MICROSOFT: "Microsoft", Provider.GOOGLE: "Google"}


# --- provider registry ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderConfig:
    """Everything needed to talk to one provider: endpoints, client, scopes and its standard servers."""

    name: str
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    userinfo_url: str = ""
    revocation_url: str = ""
    scopes: tuple[str, ...] = ()
    authorize_params: dict[str, str] = field(default_factory=dict)
    imap_host: str = ""
    imap_port: int = 993
    imap_security: str = Security.SSL
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: str = Security.STARTTLS

    @property
    def label(self) -> str:
        return LABELS.get(self.name, self.name.title())

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.authorize_url and self.token_url)

    def client(self, **kwargs: Any) -> OAuth2Session:
        return OAuth2Session(
            self.client_id,
            self.client_secret,
            scope=" ".join(self.scopes),
            redirect_uri=settings.OAUTH_REDIRECT_URI,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_post",
            revocation_endpoint_auth_method="client_secret_post",
            default_timeout=settings.OAUTH_HTTP_TIMEOUT,
            **kwargs,
        )


def provider_names() -> list[str]:
    return list(settings.OAUTH_PROVIDERS)


def provider_config(name: str, tenant: Tenant | None = None) -> ProviderConfig:
    """The deployment's settings for `name`, with the tenant's own OAuth app (if any) in place of the client."""
    try:
        raw = dict(settings.OAUTH_PROVIDERS[name])
    except KeyError:
        raise ValueError(f"Unknown OAuth provider {name!r}.") from None
    raw["scopes"] = tuple(raw.get("scopes") or ())
    raw["authorize_params"] = dict(raw.get("authorize_params") or {})
    if tenant is not None:
        app = OAuthApp.objects.filter(tenant=tenant, provider=name).first()
        if app is not None:
            raw["client_id"], raw["client_secret"] = app.client_id, str(app.client_secret)
            if app.directory:
                for key in ("authorize_url", "token_url"):
                    raw[key] = raw[key].replace("/common/", f"/{app.directory}/")
    known = ProviderConfig.__dataclass_fields__
    return ProviderConfig(name=name, **{k: v for k, v in raw.items() if k in known})


def xoauth2_string(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial response (before base64), as Microsoft and Google expect it."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


# --- connect flow --------------------------------------------------------------------------------------------


class ConnectError(Exception):
    """The connect flow cannot finish; `message` is shown to the admin as is."""

    def __init__(self, message: str, *, tenant: Tenant | None = None, mailbox: Mailbox | None = None):
        super().__init__(message)
        self.message = message
        self.tenant = tenant
        self.mailbox = mailbox


class StateError(ConnectError):
    """Unknown, expired or already used `state`: a forged, replayed or stale callback."""


class AlreadyConnected(ConnectError):
    pass


class WrongAccount(ConnectError):
    """A reconnect signed in to a different address than the mailbox's."""


@dataclass(frozen=True)
class Connected:
    mailbox: Mailbox
    created: bool


def start_connect(
    request,
    provider: str,
    *,
    mailbox: Mailbox | None = None,
    copy_from: Mailbox | None = None,
    copy_as: dict | None = None,
) -> str:
    """Remember a new connect flow in the session; return the provider's authorization URL.

    `mailbox`: reconnect that mailbox (the same address must sign in). `copy_from` + `copy_as` (email, name,
    key): create a new mailbox for `copy_as["email"]` with `copy_from`'s settings.
    """
    config = provider_config(provider, request.tenant)
    if not config.configured:
        raise ConnectError(f"Connecting with {config.label} is not set up on this helpdesk yet.")
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    nonce = secrets.token_urlsafe(16)
    now = time.time()
    flows = {
        key: flow
        for key, flow in request.session.get(SESSION_KEY, {}).items()
        if now - flow.get("started", 0) < FLOW_MAX_AGE
    }
    while len(flows) >= MAX_OPEN_FLOWS:
        flows.pop(min(flows, key=lambda k: flows[k]["started"]))
    flows[state] = {
        "provider": provider,
        "tenant": request.tenant.pk,
        "mailbox": mailbox.pk if mailbox else None,
        "copy_from": copy_from.pk if copy_from else None,
        "copy_as": copy_as or None,
        "user": request.user.pk,
        "verifier": verifier,
        "nonce": nonce,
        "started": now,
    }
    request.session[SESSION_KEY] = flows
    params = dict(config.authorize_params)
    if mailbox is not None or copy_as:
        params["login_hint"] = mailbox.email if mailbox is not None else copy_as["email"]
    url, _ = config.client().create_authorization_url(
        config.authorize_url, state=state, code_verifier=verifier, nonce=nonce, **params
    )
    return url


def pop_flow(request, state: str | None) -> dict | None:
    """Take the flow for `state` out of the session: each state works once, and only in the session that began it."""
    flows = request.session.get(SESSION_KEY, {})
    flow = flows.pop(state, None) if state else None
    request.session[SESSION_KEY] = flows
    if flow is None or time.time() - flow.get("started", 0) > FLOW_MAX_AGE:
        return None
    if flow.get("user") != request.user.pk:
        return None
    return flow


def finish_connect(request, params) -> Connected:
    """Complete the flow named by `params["state"]`: exchange the code, read the address, save the mailbox."""
    flow = pop_flow(request, params.get("state"))
    if flow is None:
        raise StateError(
            "This sign-in link is invalid, expired or was already used. Start again from the mailbox settings."
        )
    membership = (
        Membership.objects.select_related("tenant")
        .filter(tenant_id=flow["tenant"], user=request.user)
        .first()
    )
    if membership is None or not membership.is_admin:
        raise StateError("Only admins of the workspace can connect mailboxes.")
    tenant = membership.tenant
    mailbox = Mailbox.objects.filter(tenant=tenant, pk=flow["mailbox"]).first() if flow["mailbox"] else None
    if flow["mailbox"] and mailbox is None:
        raise ConnectError("The mailbox to reconnect no longer exists.", tenant=tenant)
    config = provider_config(flow["provider"], tenant)
    if params.get("error"):
        reason = params.get("error_description") or params["error"]
        raise ConnectError(
            f"{config.label} did not connect the account: {reason}", tenant=tenant, mailbox=mailbox
        )
    if not params.get("code"):
        raise StateError("The sign-in answer carried no authorization code. Start again.", tenant=tenant)

    client = config.client()
    try:
        token = client.fetch_token(
            config.token_url,
            code=params["code"],
            code_verifier=flow["verifier"],
            grant_type="authorization_code",
        )
    except OAuthError as exc:
        raise ConnectError(
            f"{config.label} refused to finish the sign-in ({exc.error}). Please start again.",
            tenant=tenant,
            mailbox=mailbox,
        ) from None
    except (requests.RequestException, ValueError) as exc:
        raise ConnectError(
            f"{config.label} could not be reached to finish the sign-in. Please try again.",
            tenant=tenant,
            mailbox=mailbox,
        ) from exc
    address = _address(config, client, token, nonce=flow["nonce"])
    if not address:
        revoke_token(config, token)
        raise ConnectError(
            f"{config.label} did not tell us the email address of the account. Please try again.",
            tenant=tenant,
        )

    if mailbox is not None:
        if address.lower() != mailbox.email.lower():
            revoke_token(config, token)
            raise WrongAccount(
                f"You signed in as {address}, but this mailbox is {mailbox.email}. Nothing was changed. Click "
                f"Reconnect again and choose {mailbox.email} in the account picker.",
                tenant=tenant,
                mailbox=mailbox,
            )
        _store_tokens(mailbox, token)
        Mailbox.objects.filter(pk=mailbox.pk).update(
            health=Health.PENDING if mailbox.is_active else Health.DISABLED,
            reconnect_notified_at=None,
            last_error="",
            last_error_advice="",
            consecutive_failures=0,
        )
        mailbox.refresh_from_db()
        return Connected(mailbox, created=False)

    copy_as = flow.get("copy_as") or {}
    if copy_as and address.lower() != copy_as["email"].lower():
        revoke_token(config, token)
        raise WrongAccount(
            f"You signed in as {address}, but the copy was meant for {copy_as['email']}. Nothing was created. "
            f"Try again and choose {copy_as['email']} in the account picker.",
            tenant=tenant,
        )
    if Mailbox.objects.filter(tenant=tenant, email__iexact=address).exists():
        revoke_token(config, token)
        existing = Mailbox.objects.filter(tenant=tenant, email__iexact=address).first()
        raise AlreadyConnected(
            f"{address} is already connected to this workspace. Use Reconnect on it if it stopped working.",
            tenant=tenant,
            mailbox=existing,
        )
    source = Mailbox.objects.filter(tenant=tenant, pk=flow.get("copy_from")).first() if copy_as else None
    mailbox = create_oauth_mailbox(tenant, config, address, token, copy_from=source, copy_as=copy_as)
    return Connected(mailbox, created=True)


def create_oauth_mailbox(
    tenant: Tenant,
    config: ProviderConfig,
    address: str,
    token: dict,
    *,
    copy_from: Mailbox | None = None,
    copy_as: dict | None = None,
) -> Mailbox:
    """A new mailbox with the provider's standard IMAP/SMTP settings and XOAUTH2 sign-in (or a copy's)."""
    from mailboxes.lifecycle import copy_settings, unique_key

    with transaction.atomic():
        if copy_from is not None and copy_as:
            mailbox = copy_settings(
                copy_from, email=address.lower(), name=copy_as["name"], key=copy_as["key"]
            )
            mailbox.connected_at = timezone.now()
            _apply_token(mailbox, token)
            mailbox.save()
            mailbox.visible_to.set(copy_from.visible_to.all())
            return mailbox
        mailbox = Mailbox(
            tenant=tenant,
            name=address.split("@")[0].replace(".", " ").title() or address,
            key=unique_key(tenant, address),
            email=address.lower(),
            sender_name=tenant.name,
            provider=config.name,
            auth_method=AuthMethod.OAUTH2,
            imap_host=config.imap_host,
            imap_port=config.imap_port,
            imap_security=config.imap_security,
            imap_username=address,
            smtp_host=config.smtp_host,
            smtp_port=config.smtp_port,
            smtp_security=config.smtp_security,
            smtp_same_credentials=True,
            connected_at=timezone.now(),
            is_default=not Mailbox.objects.filter(tenant=tenant, is_default=True).exists(),
            save_to_sent=False,
        )
        _apply_token(mailbox, token)
        mailbox.save()
    return mailbox


def _apply_token(mailbox: Mailbox, token: dict, *, keep_refresh: bool = True) -> None:
    mailbox.oauth_access_token = token["access_token"]
    if token.get("refresh_token") or not keep_refresh:
        mailbox.oauth_refresh_token = token.get("refresh_token", "")
    expires_in = token.get("expires_in")
    if expires_in is not None:
        mailbox.oauth_expires_at = timezone.now() + timedelta(seconds=int(expires_in))
    elif token.get("expires_at"):
        mailbox.oauth_expires_at = datetime.fromtimestamp(int(token["expires_at"]), tz=UTC)
    else:
        mailbox.oauth_expires_at = timezone.now() + timedelta(hours=1)
    if token.get("scope"):
        mailbox.oauth_scope = token["scope"] if isinstance(token["scope"], str) else " ".join(token["scope"])


def _store_tokens(mailbox: Mailbox, token: dict) -> None:
    _apply_token(mailbox, token)
    Mailbox.objects.filter(pk=mailbox.pk).update(
        oauth_access_token=mailbox.oauth_access_token,
        oauth_refresh_token=mailbox.oauth_refresh_token,
        oauth_expires_at=mailbox.oauth_expires_at,
        oauth_scope=mailbox.oauth_scope,
        oauth_refresh_lease_until=None,
    )


def _jwt_claims(id_token: str) -> dict:
    """The claims of an ID token received straight from the token endpoint over TLS (OIDC Core 3.1.3.7: the
    TLS-authenticated channel stands in for the signature check)."""
    try:
        payload = id_token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def _address(config: ProviderConfig, client: OAuth2Session, token: dict, *, nonce: str) -> str:
    """The mailbox address from the ID token (checked for audience, nonce and expiry), else from userinfo."""
    claims = _jwt_claims(token.get("id_token", "")) if token.get("id_token") else {}
    if claims:
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if config.client_id not in audiences or claims.get("nonce") not in (None, nonce):
            raise ConnectError(
                f"The answer from {config.label} was not meant for this helpdesk. Please start again."
            )
        if claims.get("exp") and float(claims["exp"]) < time.time() - 300:
            raise ConnectError(f"The answer from {config.label} has expired. Please start again.")
        if claims.get("nonce") is None and claims:
            logger.warning("ID token from %s without nonce", config.name)
    address = claims.get("email") or ""
    if not address and config.userinfo_url:
        try:
            response = client.get(config.userinfo_url, timeout=settings.OAUTH_HTTP_TIMEOUT)
            if response.ok:
                address = response.json().get("email") or ""
        except (requests.RequestException, ValueError):
            logger.warning("userinfo request to %s failed", config.name)
    if not address:
        for claim in ("preferred_username", "upn", "unique_name"):
            value = claims.get(claim) or ""
            if "@" in value:
                address = value
                break
    return address.strip().lower()


# --- using tokens ---------------------------------------------------------------------------------------------


def access_token(mailbox: Mailbox, *, force_refresh: bool = False) -> str:
    """A usable access token for `mailbox`, refreshed when it expires within the margin (or when forced).

    Raises NeedsReconnect when the provider refuses the refresh token, OAuthProviderError when it cannot be
    reached. The mailbox object is updated in place with the new token.
    """
    margin = timedelta(seconds=settings.OAUTH_REFRESH_MARGIN_SECONDS)
    if not force_refresh and mailbox.oauth_access_token and not mailbox.token_expires_soon(margin):
        return str(mailbox.oauth_access_token)
    stale = str(mailbox.oauth_access_token) if force_refresh else None
    deadline = time.monotonic() + settings.OAUTH_HTTP_TIMEOUT + 5
    while True:
        now = timezone.now()
        claimed = (
            Mailbox.objects.filter(pk=mailbox.pk)
            .filter(Q(oauth_refresh_lease_until__isnull=True) | Q(oauth_refresh_lease_until__lt=now))
            .update(oauth_refresh_lease_until=now + REFRESH_LEASE)
        )
        fresh = Mailbox.objects.get(pk=mailbox.pk)
        good = (
            fresh.oauth_access_token
            and not fresh.token_expires_soon(margin)
            and fresh.oauth_access_token != stale
        )
        if good:  # another worker refreshed while we waited (or before we looked)
            if claimed:
                Mailbox.objects.filter(pk=mailbox.pk).update(oauth_refresh_lease_until=None)
            _copy_tokens(fresh, mailbox)
            return str(mailbox.oauth_access_token)
        if claimed:
            break
        if time.monotonic() > deadline:
            raise OAuthProviderError(
                "The sign-in token is being renewed by another process, which takes too long.",
                "Try again in a minute.",
            )
        time.sleep(0.1)
    try:
        token = _refresh(mailbox, fresh)
    except BaseException:
        Mailbox.objects.filter(pk=mailbox.pk).update(oauth_refresh_lease_until=None)
        raise
    _store_tokens(mailbox, token)  # also releases the lease
    logger.info("Refreshed the OAuth token of mailbox %s", mailbox.pk)
    return str(mailbox.oauth_access_token)


def _copy_tokens(source: Mailbox, target: Mailbox) -> None:
    for name in ("oauth_access_token", "oauth_refresh_token", "oauth_expires_at", "oauth_scope", "health"):
        setattr(target, name, getattr(source, name))


def _refresh(mailbox: Mailbox, fresh: Mailbox) -> dict:
    config = provider_config(mailbox.provider, mailbox.tenant)
    if not fresh.oauth_refresh_token:
        mark_needs_reconnect(mailbox, "There is no refresh token: the account was never fully connected.")
        raise NeedsReconnect()
    try:
        return config.client().refresh_token(config.token_url, refresh_token=str(fresh.oauth_refresh_token))
    except OAuthError as exc:
        if exc.error in DEAD_GRANT_ERRORS:
            mark_needs_reconnect(mailbox, f"{config.label} no longer accepts the connection ({exc.error}).")
            raise NeedsReconnect(
                f"{config.label} no longer accepts the connection to {mailbox.email}: it was revoked, expired or "
                "the password changed.",
                "Click “Reconnect” and sign in to the account again.",
                detail=exc.error,
            ) from None
        raise OAuthProviderError(
            f"{config.label} refused to renew the sign-in token ({exc.error}).",
            "If this keeps happening, the helpdesk's OAuth app settings may be wrong; tell the people who run it.",
            detail=exc.error,
            temporary=exc.error in ("temporarily_unavailable", "server_error"),
        ) from None
    except (requests.RequestException, ValueError) as exc:
        raise OAuthProviderError(
            f"{config.label}'s sign-in service could not be reached to renew the token.",
            detail=type(exc).__name__,
        ) from None


def mark_needs_reconnect(mailbox: Mailbox, reason: str) -> None:
    """Turn the mailbox "needs reconnect" and email its admins, once per breakage."""
    now = timezone.now()
    Mailbox.objects.filter(pk=mailbox.pk).update(
        health=Health.NEEDS_RECONNECT,
        last_error=reason,
        last_error_advice="Click “Reconnect” and sign in to the account again.",
        last_error_at=now,
    )
    first = Mailbox.objects.filter(pk=mailbox.pk, reconnect_notified_at__isnull=True).update(
        reconnect_notified_at=now
    )
    mailbox.health = Health.NEEDS_RECONNECT
    mailbox.last_error = reason
    if first:
        transaction.on_commit(lambda: notify_admins_needs_reconnect(mailbox.pk, reason))


def notify_admins_needs_reconnect(mailbox_id: int, reason: str) -> int:
    """Email every admin of the mailbox's tenant that it needs reconnecting; returns how many got it."""
    mailbox = Mailbox.objects.select_related("tenant").get(pk=mailbox_id)
    admins = list(
        User.objects.filter(
            memberships__tenant=mailbox.tenant, memberships__role__in=["owner", "admin"], is_active=True
        ).distinct()
    )
    if not admins:
        return 0
    context = {
        "mailbox": mailbox,
        "reason": reason,
        "url": settings.SITE_URL + tenant_reverse(mailbox.tenant, "mailboxes:detail", mailbox.pk),
    }
    subject = render_to_string("mailboxes/email/needs_reconnect_subject.txt", context).strip()
    body = render_to_string("mailboxes/email/needs_reconnect.txt", context)
    sent = 0
    for admin in admins:
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [admin.email])
        except (OSError, smtplib.SMTPException) as exc:
            # The banner in the app says the same; one admin's unreachable address must not stop the others.
            logger.warning("reconnect notice to %s failed: %s", admin.email, exc)
        else:
            sent += 1
    return sent


def revoke_token(
    config: ProviderConfig, token: dict | None = None, *, mailbox: Mailbox | None = None
) -> bool:
    """Revoke at the provider (refresh token first: that also ends the access tokens); False if not possible."""
    if not config.revocation_url:
        return False
    candidates: list[tuple[str, str]] = []
    if mailbox is not None:
        candidates = [
            (str(mailbox.oauth_refresh_token), "refresh_token"),
            (str(mailbox.oauth_access_token), "access_token"),
        ]
    elif token:
        candidates = [
            (token.get("refresh_token", ""), "refresh_token"),
            (token.get("access_token", ""), "access_token"),
        ]
    done = False
    client = config.client()
    for value, hint in candidates:
        if not value:
            continue
        try:
            response = client.revoke_token(config.revocation_url, token=value, token_type_hint=hint)
            done = done or response.ok
        except (requests.RequestException, OAuthError):
            logger.warning("Revoking a %s at %s failed", hint, config.name)
    return done
