"""Settings for the helpdesk: one file, read from the environment through django-environ.

Every variable is listed with a comment in `.env.example`. The defaults are the embedded ones: SQLite, local
file storage and Celery on the filesystem broker, so a fresh checkout runs with no services at all. Setting
DATABASE_URL, REDIS_URL / CELERY_BROKER_URL and the S3 variables switches to PostgreSQL, Redis and MinIO.
Any variable may instead be given as NAME_FILE pointing at a file that holds the value (Docker secrets).
"""

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent


# FileAwareEnv: NAME_FILE=/run/secrets/x gives NAME the file's content (Docker secrets).
env = environ.FileAwareEnv()
# Which env file to read (default: .env in the checkout; empty: none). Read before `env`, so not an env.* call.
_env_file = os.environ.get("HELPDESK_ENV_FILE", str(BASE_DIR / ".env"))
if _env_file and Path(_env_file).is_file():
    env.read_env(_env_file, overwrite=False)

VAR_DIR = Path(env.str("HELPDESK_VAR_DIR", default=str(BASE_DIR / "var")))

# --- core ---------------------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG and not env.bool("HELPDESK_TESTING", default=False):
        raise RuntimeError("SECRET_KEY is not set. Put a long random value in .env (see .env.example).")
    SECRET_KEY = "insecure-development-key-only-for-debug-and-tests"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "axes",
    "accounts",
    "mailboxes",
    "tickets",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "accounts.middleware.TenantMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "helpdesk.urls"
WSGI_APPLICATION = "helpdesk.wsgi.application"
ASGI_APPLICATION = "helpdesk.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context.shell",
                "mailboxes.context.reconnect_banner",
            ],
            "builtins": ["accounts.templatetags.tenant_urls"],
        },
    }
]

# --- database -----------------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'helpdesk.sqlite3'}")}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the web process and the worker share the embedded database.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- authentication -----------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = env.list(
    "PASSWORD_HASHERS",
    default=[
        "django.contrib.auth.hashers.ScryptPasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ],
)
# Fernet keys for credentials at rest (comma-separated; first encrypts, all decrypt). See mailboxes/vault.py.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
INVITATION_MAX_AGE_DAYS = env.int("INVITATION_MAX_AGE_DAYS", default=7)

# Brute-force protection (django-axes): lock a username+IP pair after N failures for a cool-off period.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("LOGIN_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_VERBOSE = False

# --- security -----------------------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the cookie-less meta tag; keep the default behaviour
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "SAMEORIGIN"
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

from django.utils.csp import CSP  # noqa: E402  (needs django importable; kept next to its use)

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "frame-src": [CSP.SELF],
    "frame-ancestors": [CSP.SELF],
    "form-action": [CSP.SELF, *env.list("CSP_FORM_ACTION_EXTRA", default=[])],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}

# --- internationalisation -----------------------------------------------------------------------------------
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
LANGUAGES = [
    ("en", "English"),
    ("de", "Deutsch"),
    ("fr", "Français"),
    ("es", "Español"),
    ("nl", "Nederlands"),
]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- static files and object storage ------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = VAR_DIR / "media"

S3_ENDPOINT_URL = env.str("S3_ENDPOINT_URL", default="")
_media_storage: dict = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {}}
if S3_ENDPOINT_URL:
    _media_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "endpoint_url": S3_ENDPOINT_URL,
            "access_key": env.str("S3_ACCESS_KEY_ID", default=""),
            "secret_key": env.str("S3_SECRET_ACCESS_KEY", default=""),
            "bucket_name": env.str("S3_BUCKET", default="helpdesk-attachments"),
            "region_name": env.str("S3_REGION", default="us-east-1"),
            "addressing_style": "path",
            "signature_version": "s3v4",
            "default_acl": None,
            "file_overwrite": True,  # keys are content hashes: the same key always holds the same bytes
            "querystring_expire": env.int("S3_URL_EXPIRE_SECONDS", default=60),
        },
    }
STORAGES = {
    "default": _media_storage,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or env.bool("HELPDESK_TESTING", default=False)
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 30 * 1024 * 1024
ATTACHMENT_MAX_BYTES = env.int("ATTACHMENT_MAX_BYTES", default=25 * 1024 * 1024)

# --- cache --------------------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    # Sessions read from the shared cache (written through to the database): one query less per request.
    # Not with the per-process locmem cache, where another process would keep a logged-out session alive.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery -------------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery" / "queue"
    _processed_dir = VAR_DIR / "celery" / "processed"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        "store_processed": False,
        "polling_interval": 0.2,
    }
elif CELERY_BROKER_URL.startswith("redis"):
    # A task that is not acknowledged within this time is handed to another worker (acks_late tasks).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- email (the app's own mail: password resets, invitations, alerts) ---------------------------------------
# Django's MAILERS setting; the environment keeps the familiar EMAIL_* names. Only the SMTP backend takes the
# server options (the others refuse options they do not know).
_email_backend = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
_smtp_options = {
    "host": env.str("EMAIL_HOST", default="localhost"),
    "port": env.int("EMAIL_PORT", default=25),
    "username": env.str("EMAIL_HOST_USER", default=""),
    "password": env.str("EMAIL_HOST_PASSWORD", default=""),
    "use_tls": env.bool("EMAIL_USE_TLS", default=False),
    "use_ssl": env.bool("EMAIL_USE_SSL", default=False),
}
MAILERS = {
    "default": {
        "BACKEND": _email_backend,
        "OPTIONS": _smtp_options if _email_backend == "django.core.mail.backends.smtp.EmailBackend" else {},
    }
}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Helpdesk <noreply@localhost>")

# --- logging ------------------------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {"axes": {"level": "WARNING"}},
}

# --- mailboxes / OAuth providers ----------------------------------------------------------------------------
# Admin-entered mail hosts that resolve to loopback/private/link-local addresses are refused unless this is on
# (or the mailbox's own "allow private hosts" flag, set by ops through `add_mailbox --allow-private-hosts`).
MAILBOX_ALLOW_PRIVATE_HOSTS = env.bool("MAILBOX_ALLOW_PRIVATE_HOSTS", default=False)
# Extra CA bundle trusted for IMAP/SMTP TLS on top of the system store (a company CA; the test rig's CA).
MAILBOX_CA_FILE = env.str("MAILBOX_CA_FILE", default="")
MAILBOX_EHLO_HOSTNAME = env.str("MAILBOX_EHLO_HOSTNAME", default="") or (
    SITE_URL.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "localhost"
)
# Nameservers for autodiscovery (MX/SRV) and for resolving admin-entered hosts; empty = the system's.
DNS_RESOLVER_NAMESERVERS = env.list("DNS_RESOLVER_NAMESERVERS", default=[])
DNS_RESOLVER_PORT = env.int("DNS_RESOLVER_PORT", default=53)
DNS_RESOLVER_TIMEOUT = env.float("DNS_RESOLVER_TIMEOUT", default=3.0)
# Sending: a 4xx answer is retried with backoff for this long, then the mail fails (mailboxes/outcomes.py).
OUTBOUND_RETRY_HOURS = env.int("OUTBOUND_RETRY_HOURS", default=24)
# A claimed mail whose sender shows no sign of life for this long is recovered (mailboxes/sender.py).
OUTBOUND_SENDING_LEASE_SECONDS = env.int("OUTBOUND_SENDING_LEASE_SECONDS", default=900)
# Domain of our Message-IDs; empty: SITE_URL's host, else the mailbox's domain (mailboxes/mime.py).
MESSAGE_ID_DOMAIN = env.str("MESSAGE_ID_DOMAIN", default="")
# The one redirect URI registered at Microsoft and Google for every tenant.
OAUTH_REDIRECT_URI = env.str("OAUTH_REDIRECT_URI", default=f"{SITE_URL}/oauth/callback/")
OAUTH_REFRESH_MARGIN_SECONDS = env.int("OAUTH_REFRESH_MARGIN_SECONDS", default=300)
OAUTH_HTTP_TIMEOUT = env.float("OAUTH_HTTP_TIMEOUT", default=15.0)
_ms_tenant = env.str("MICROSOFT_OAUTH_TENANT", default="common")
_ms_login = f"https://login.microsoftonline.com/{_ms_tenant}/oauth2/v2.0"
OAUTH_PROVIDERS = {
    "microsoft": {
        "client_id": env.str("MICROSOFT_OAUTH_CLIENT_ID", default=""),
        "client_secret": env.str("MICROSOFT_OAUTH_CLIENT_SECRET", default=""),
        "authorize_url": env.str("MICROSOFT_OAUTH_AUTHORIZE_URL", default=f"{_ms_login}/authorize"),
        "token_url": env.str("MICROSOFT_OAUTH_TOKEN_URL", default=f"{_ms_login}/token"),
        # The ID token carries the address; Graph's userinfo needs a Graph token, which we do not ask for.
        "userinfo_url": env.str("MICROSOFT_OAUTH_USERINFO_URL", default=""),
        "revocation_url": env.str("MICROSOFT_OAUTH_REVOCATION_URL", default=""),  # Microsoft has none
        "scopes": env.list(
            "MICROSOFT_OAUTH_SCOPES",
            default=[
                "https://outlook.office.com/IMAP.AccessAsUser.All",
                "https://outlook.office.com/SMTP.Send",
                "offline_access",
                "openid",
                "email",
            ],
        ),
        "authorize_params": {"prompt": "select_account"},
        "imap_host": env.str("MICROSOFT_IMAP_HOST", default="outlook.office365.com"),
        "imap_port": env.int("MICROSOFT_IMAP_PORT", default=993),
        "imap_security": env.str("MICROSOFT_IMAP_SECURITY", default="ssl"),
        "smtp_host": env.str("MICROSOFT_SMTP_HOST", default="smtp.office365.com"),
        "smtp_port": env.int("MICROSOFT_SMTP_PORT", default=587),
        "smtp_security": env.str("MICROSOFT_SMTP_SECURITY", default="starttls"),
    },
    "google": {
        "client_id": env.str("GOOGLE_OAUTH_CLIENT_ID", default=""),
        "client_secret": env.str("GOOGLE_OAUTH_CLIENT_SECRET", default=""),
        "authorize_url": env.str(
            "GOOGLE_OAUTH_AUTHORIZE_URL", default="https://accounts.google.com/o/oauth2/v2/auth"
        ),
        "token_url": env.str("GOOGLE_OAUTH_TOKEN_URL", default="https://oauth2.googleapis.com/token"),
        "userinfo_url": env.str(
            "GOOGLE_OAUTH_USERINFO_URL", default="https://openidconnect.googleapis.com/v1/userinfo"
        ),
        "revocation_url": env.str(
            "GOOGLE_OAUTH_REVOCATION_URL", default="https://oauth2.googleapis.com/revoke"
        ),
        "scopes": env.list("GOOGLE_OAUTH_SCOPES", default=["https://mail.google.com/", "openid", "email"]),
        # Google hands out a refresh token only with offline access and (on a repeated connect) fresh consent.
        "authorize_params": {"prompt": "select_account consent", "access_type": "offline"},
        "imap_host": env.str("GOOGLE_IMAP_HOST", default="imap.gmail.com"),
        "imap_port": env.int("GOOGLE_IMAP_PORT", default=993),
        "imap_security": env.str("GOOGLE_IMAP_SECURITY", default="ssl"),
        "smtp_host": env.str("GOOGLE_SMTP_HOST", default="smtp.gmail.com"),
        "smtp_port": env.int("GOOGLE_SMTP_PORT", default=465),
        "smtp_security": env.str("GOOGLE_SMTP_SECURITY", default="ssl"),
    },
}
# "Connect with Microsoft/Google" is a form POST answered by a redirect to the provider: CSP's form-action
# covers that redirect, so the providers' sign-in origins must be allowed there.
SECURE_CSP["form-action"] = [
    *SECURE_CSP["form-action"],
    *sorted(
        {
            "/".join(p["authorize_url"].split("/", 3)[:3])
            for p in OAUTH_PROVIDERS.values()
            if p["authorize_url"]
        }
    ),
]
