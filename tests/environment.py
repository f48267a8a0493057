"""Loaded with `-p tests.environment` before pytest-django imports the settings: the test-only environment."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("HELPDESK_TESTING", "1")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
# Fast hashing: tests create many users; production keeps scrypt.
os.environ.setdefault("PASSWORD_HASHERS", "django.contrib.auth.hashers.MD5PasswordHasher")
if "HELPDESK_VAR_DIR" not in os.environ:
    _var = tempfile.mkdtemp(prefix="helpdesk-test-var-")
    os.environ["HELPDESK_VAR_DIR"] = _var
    atexit.register(shutil.rmtree, _var, ignore_errors=True)
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
os.environ.setdefault("SECURE_COOKIES", "0")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
