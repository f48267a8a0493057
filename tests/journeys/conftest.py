"""Fixtures of the journey tests: the real servers wired up as ops would (S3 storage, the rig's CA, private
hosts allowed, DNS through dnsmasq), a signed-in browser page, and patient waits for a loaded machine."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.inbound.conftest import reset_storages, s3_storages
from tests.mailboxes.conftest import dns, private_ok, rig_ca  # noqa: F401 - fixtures used here too
from tests.tickets.conftest import sign_in  # noqa: F401 - fixture used here too


@pytest.fixture(scope="session")
def journey_bucket(s3_server) -> str:
    return s3_server.new_bucket("journeys")


@pytest.fixture
def s3_storage(settings, s3_server, journey_bucket):
    """Django's default storage is the rig's SeaweedFS: raw mail, attachments and .eml files go there."""
    settings.STORAGES = s3_storages(s3_server, journey_bucket)
    reset_storages()
    yield s3_server
    reset_storages()


@pytest.fixture(autouse=True)
def patient_expect():
    """Live updates poll every few seconds and mail goes through Postfix: wait longer than Playwright's 5 s."""
    expect.set_options(timeout=30_000)
    yield
    expect.set_options(timeout=None)
