"""A tiny Django project acting as the OAuth2/OIDC identity provider in tests (django-oauth-toolkit).

It stands in for login.microsoftonline.com and accounts.google.com: login form, consent page, authorization
code with PKCE, refresh-token rotation, revocation, RFC 7662 introspection (Dovecot and the aiosmtpd server
validate XOAUTH2 tokens there) and OpenID Connect. It runs as its own process (``serve.py``), never inside the
test process, because the test process already runs the helpdesk's Django.
"""

# Shared with the test process (which must not import this project's Django models): keep Django-free.
DEFAULT_USERS = ("alice@example.test", "bob@example.test", "support@acme.test", "support2@acme.test")


def default_password(email: str) -> str:
    """The rig's password convention for every server: local part + "pw" (alice@example.test -> alicepw)."""
    return email.split("@")[0] + "pw"
