"""Health endpoints (/healthz, /readyz) and the JSON log format."""

import io
import json
import logging
import logging.config
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpdesk import health

ROOT = Path(__file__).resolve().parent.parent


def test_healthz_answers_ok_without_a_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_ok_when_every_check_passes(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {name: "ok" for name in health.CHECKS}
    assert {"database", "broker", "storage"} <= set(body["checks"])


@pytest.mark.django_db
def test_readyz_is_503_and_names_the_database_when_it_fails(client, monkeypatch):
    def broken() -> None:
        raise ConnectionRefusedError("database is down")

    monkeypatch.setitem(health.CHECKS, "database", broken)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failed"
    assert body["checks"]["database"] == "failed: ConnectionRefusedError"
    assert body["checks"]["broker"] == "ok"
    assert "database is down" not in response.content.decode()  # no internals in a public answer


def test_log_format_json_writes_one_json_object_per_line(tmp_path):
    """Run a fresh process with LOG_FORMAT=json, as the containers do, and read what it logs."""
    script = (
        "import django, logging; django.setup(); "
        "logging.getLogger('helpdesk.test').warning('mailbox %s is slow', 'support@acme.test')"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "helpdesk.settings",
        "HELPDESK_TESTING": "1",
        "HELPDESK_VAR_DIR": str(tmp_path),
        "LOG_FORMAT": "json",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    record = json.loads(lines[-1])
    assert record["message"] == "mailbox support@acme.test is slow"
    assert record["level"] == "WARNING"
    assert record["logger"] == "helpdesk.test"
    assert "time" in record


def test_json_formatter_of_settings_logging_emits_one_json_line(settings):
    """The `json` formatter as configured in settings.LOGGING, built without touching the global logging."""
    formatter = logging.config.DictConfigurator({}).configure_formatter(
        dict(settings.LOGGING["formatters"]["json"])
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.Logger("helpdesk.test")
    logger.addHandler(handler)
    logger.error("ticket %s failed", 42, extra={"tenant": "acme"})
    line = stream.getvalue()
    assert line.count("\n") == 1
    record = json.loads(line)
    assert record["message"] == "ticket 42 failed"
    assert record["level"] == "ERROR"
    assert record["tenant"] == "acme"
