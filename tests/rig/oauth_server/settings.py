"""Settings of the test identity provider. Everything that differs per session comes from the environment
that ``tests.rig.oauth`` sets when it starts ``serve.py``."""

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent

SECRET_KEY = "rig-oauth-server-test-only"
DEBUG = True  # tracebacks of server errors land in the log the rig prints when something fails
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.rig.oauth_server.urls"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "oauth2_provider",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [HERE / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("RIG_OAUTH_DB", str(HERE / "db.sqlite3")),
        # The server is threaded: Dovecot introspects while a test exchanges a code.
        "OPTIONS": {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;"},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
# Tables straight from the models ("migrate --run-syncdb"), no migration history: 0.3 s instead of 5-11 s
# for the ~40 migrations of auth and oauth2_provider. Nothing here ever needs a schema migration.
MIGRATION_MODULES = {app: None for app in ("auth", "contenttypes", "sessions", "oauth2_provider")}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"  # no session table writes per login
STATIC_URL = "/static/"
LOGIN_URL = "/accounts/login/"
USE_TZ = True

# DOT hashes client secrets with the password hasher: with PBKDF2 every token and introspection call costs
# ~0.3 s. MD5 makes them ~1 ms. Test-only server, test-only passwords.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

_key_path = os.environ.get("RIG_OAUTH_KEY_PATH")
OAUTH2_PROVIDER = {
    "PKCE_REQUIRED": True,
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
    "REFRESH_TOKEN_EXPIRE_SECONDS": 86400,
    "ROTATE_REFRESH_TOKEN": True,
    "ALLOW_LOCALHOST_LOOPBACK": True,  # RFC 8252: any port for http://localhost/... as for 127.0.0.1
    "OIDC_ENABLED": True,
    "OIDC_ISS_ENDPOINT": os.environ.get("RIG_OAUTH_ISSUER", ""),
    "OIDC_RSA_PRIVATE_KEY": Path(_key_path).read_text() if _key_path else "",
    "OAUTH2_VALIDATOR_CLASS": "tests.rig.oauth_server.validators.RigValidator",
    # The scope strings the helpdesk sends to Microsoft and Google in production.
    "SCOPES": {
        "openid": "OpenID Connect",
        "email": "Email address",
        "profile": "Profile",
        "offline_access": "Refresh tokens",
        "https://outlook.office.com/IMAP.AccessAsUser.All": "Microsoft IMAP",
        "https://outlook.office.com/SMTP.Send": "Microsoft SMTP",
        "https://mail.google.com/": "Gmail IMAP/SMTP",
        "introspection": "Token introspection",
    },
    "DEFAULT_SCOPES": ["openid"],
}
