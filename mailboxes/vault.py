"""Credentials at rest: passwords and OAuth tokens are encrypted with MultiFernet.

Keys come from FIELD_ENCRYPTION_KEYS (comma-separated Fernet keys; the first encrypts, all decrypt), so a key
is rotated by putting a new one in front and running `manage.py rotate_secrets`. Without the setting, a key
is derived from SECRET_KEY, which is good enough for a demo and documented as not for production.
"""

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models
from django.db.models.query_utils import DeferredAttribute

PREFIX = "fernet:"


@cache
def _fernet() -> MultiFernet:
    keys = [k.strip() for k in settings.FIELD_ENCRYPTION_KEYS if k.strip()]
    if not keys:
        derived = hashlib.sha256(b"helpdesk-field-encryption:" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(derived).decode()]
    return MultiFernet([Fernet(k.encode()) for k in keys])


def reset_keys_cache() -> None:
    """Forget the loaded keys (after the settings changed, e.g. in tests of rotation)."""
    _fernet.cache_clear()


def encrypt(plain: str) -> str:
    return PREFIX + _fernet().encrypt(plain.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        raise ValueError("Value is not encrypted with the vault.")
    try:
        return _fernet().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise ValueError("Cannot decrypt: none of FIELD_ENCRYPTION_KEYS fits. Was a key removed?") from None


def rotate(stored: str) -> str:
    """Re-encrypt under the current first key."""
    return PREFIX + _fernet().rotate(stored[len(PREFIX) :].encode()).decode()


class Secret(str):
    """A decrypted credential whose repr never shows the value (so it stays out of logs and tracebacks)."""

    def __repr__(self) -> str:
        return "Secret('********')" if self else "Secret('')"


class SecretAttribute(DeferredAttribute):
    """Wraps every value assigned to the field in Secret, so even a freshly set password never shows in a repr."""

    def __set__(self, instance, value):
        if isinstance(value, str) and not isinstance(value, Secret):
            value = Secret(value)
        instance.__dict__[self.field.attname] = value


class EncryptedTextField(models.TextField):
    """A text column holding ciphertext; Python code sees the plain value (as a Secret)."""

    descriptor_class = SecretAttribute

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return Secret("")
        return Secret(decrypt(value))

    def to_python(self, value):
        if isinstance(value, Secret) or value is None:
            return value
        return Secret(value)

    def get_prep_value(self, value):
        if value in (None, ""):
            return ""
        return encrypt(str(value))
