"""Loaded with `-p tests.environment` before pytest-django imports the settings: the test-only environment."""

import os
import tempfile

os.environ.setdefault("HELPDESK_TESTING", "1")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
# Fast hashing: tests create many users; production keeps scrypt.
os.environ.setdefault("PASSWORD_HASHERS", "django.contrib.auth.hashers.MD5PasswordHasher")
os.environ.setdefault("HELPDESK_VAR_DIR", tempfile.mkdtemp(prefix="helpdesk-test-var-"))
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
os.environ.setdefault("SECURE_COOKIES", "0")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
