"""Test-only control endpoints (``POST /rig/<action>/``) so the test process can change the provider's state
without opening its SQLite file behind Django's back. Protected by a per-session random token."""

import hmac
import json
import os
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.models import get_access_token_model, get_application_model, get_refresh_token_model


def _add_user(data: dict) -> dict:
    user, _ = get_user_model().objects.update_or_create(
        username=data["username"], defaults={"email": data.get("email") or data["username"]}
    )
    user.set_password(data["password"])
    user.save()
    return {"id": user.pk}


def _revoke_all(data: dict) -> dict:
    user = get_user_model().objects.get(username=data["username"])
    refresh = list(get_refresh_token_model().objects.filter(user=user, revoked__isnull=True))
    for token in refresh:
        token.revoke()  # also deletes its access token
    access = list(get_access_token_model().objects.filter(user=user))
    for token in access:
        token.revoke()
    return {"refresh_tokens": len(refresh), "access_tokens": len(access)}


def _expire_access_tokens(data: dict) -> dict:
    user = get_user_model().objects.get(username=data["username"])
    past = timezone.now() - timedelta(seconds=data.get("seconds_ago", 60))
    return {"access_tokens": get_access_token_model().objects.filter(user=user).update(expires=past)}


def _register_redirect_uri(data: dict) -> dict:
    app = get_application_model().objects.get(client_id=data["client_id"])
    uris = app.redirect_uris.split()
    if data["uri"] not in uris:
        app.redirect_uris = " ".join([*uris, data["uri"]])
        app.save(update_fields=["redirect_uris"])
    return {"redirect_uris": app.redirect_uris.split()}


ACTIONS = {
    "add-user": _add_user,
    "revoke-all": _revoke_all,
    "expire-access-tokens": _expire_access_tokens,
    "register-redirect-uri": _register_redirect_uri,
}


@csrf_exempt
def dispatch(request: HttpRequest, action: str) -> JsonResponse:
    expected = os.environ.get("RIG_OAUTH_CONTROL_TOKEN", "")
    given = request.headers.get("X-Rig-Token", "")
    if request.method != "POST" or not expected or not hmac.compare_digest(given, expected):
        return JsonResponse({"error": "forbidden"}, status=403)
    handler = ACTIONS.get(action)
    if handler is None:
        return JsonResponse({"error": f"unknown action {action}"}, status=404)
    return JsonResponse(handler(json.loads(request.body)))
