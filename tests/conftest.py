"""The visible cast of every test: a tenant with an owner, an admin and an agent, and an outsider elsewhere."""

import pytest

from accounts.models import Membership, Role, Tenant, User

pytest_plugins = ["tests.rig.plugin"]

PASSWORD = "correct-horse-battery"


def make_member(tenant: Tenant, email: str, role: str, name: str = "") -> User:
    user = User.objects.create_user(email, PASSWORD, name=name or email.split("@")[0].title())
    Membership.objects.create(tenant=tenant, user=user, role=role)
    return user


@pytest.fixture
def tenant(db) -> Tenant:
    return Tenant.objects.create(name="Acme Support", slug="acme")


@pytest.fixture
def owner(tenant) -> User:
    return make_member(tenant, "olivia@acme.test", Role.OWNER, "Olivia Owner")


@pytest.fixture
def admin(tenant) -> User:
    return make_member(tenant, "adam@acme.test", Role.ADMIN, "Adam Admin")


@pytest.fixture
def agent(tenant) -> User:
    return make_member(tenant, "agnes@acme.test", Role.AGENT, "Agnes Agent")


@pytest.fixture
def light_agent(tenant) -> User:
    return make_member(tenant, "leo@acme.test", Role.LIGHT_AGENT, "Leo Light")


@pytest.fixture
def other_tenant(db) -> Tenant:
    return Tenant.objects.create(name="Globex", slug="globex")


@pytest.fixture
def outsider(other_tenant) -> User:
    """An admin of another tenant: must never see anything of `tenant`."""
    return make_member(other_tenant, "oscar@globex.test", Role.ADMIN, "Oscar Outsider")
