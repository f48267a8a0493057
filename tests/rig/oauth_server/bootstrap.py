"""Initial users and OAuth applications. Runs once per cache key; the result is reused as a template DB."""

from django.contrib.auth import get_user_model
from oauth2_provider.models import get_application_model

from tests.rig.oauth_server import DEFAULT_USERS, default_password

# RFC 8252 section 7.3: DOT accepts any port on a registered http://127.0.0.1/ (and, with
# ALLOW_LOCALHOST_LOOPBACK, http://localhost/) redirect URI, so the helpdesk's live_server callback works
# whatever port pytest-django picked. The path must still match exactly.
HELPDESK_REDIRECT_URIS = [
    f"http://{host}/oauth/callback{slash}" for host in ("127.0.0.1", "localhost") for slash in ("/", "")
]


def bootstrap() -> None:
    user_model = get_user_model()
    for email in DEFAULT_USERS:
        user = user_model(username=email, email=email)
        user.set_password(default_password(email))
        user.save()
    application = get_application_model()
    # The helpdesk ("Connect with Microsoft/Google"): confidential web app, authorization code + PKCE.
    application.objects.create(
        name="helpdesk",
        client_id="helpdesk-client",
        client_secret="helpdesk-secret",
        client_type=application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=" ".join(HELPDESK_REDIRECT_URIS),
        algorithm=application.RS256_ALGORITHM,
        skip_authorization=False,
    )
    # Resource servers (Dovecot's oauth2 passdb, the aiosmtpd server) authenticate to /o/introspect/ with it.
    application.objects.create(
        name="dovecot",
        client_id="dovecot",
        client_secret="dovecot-secret",
        client_type=application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=application.GRANT_CLIENT_CREDENTIALS,
    )
