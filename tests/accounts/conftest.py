"""Helpers for the accounts tests: signed-in clients for the cast."""

import pytest
from django.test import Client


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner_client(owner) -> Client:
    return signed_in(owner)


@pytest.fixture
def admin_client_(admin) -> Client:
    """`admin` of `tenant` signed in (the trailing underscore avoids pytest-django's own admin_client)."""
    return signed_in(admin)


@pytest.fixture
def agent_client(agent) -> Client:
    return signed_in(agent)


@pytest.fixture
def outsider_client(outsider) -> Client:
    return signed_in(outsider)
