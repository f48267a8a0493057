"""create_tenant (ops provisioning) and bootstrap_demo (first run)."""

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from accounts.models import Membership, Role, Tenant, User


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "password"
    path.write_text("s3cret-owner-passphrase\n")
    return path


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_tenant_makes_tenant_and_owner_and_prints_login_url(db, password_file):
    out = run(
        "create_tenant", "--slug", "initech", "--name", "Initech", "--owner-email", "Bill@Initech.example",
        "--owner-password-file", str(password_file), "--owner-name", "Bill Lumbergh",
    )  # fmt: skip
    tenant = Tenant.objects.get(slug="initech")
    owner = User.objects.get(email="bill@initech.example")
    assert owner.check_password("s3cret-owner-passphrase")
    assert Membership.objects.get(tenant=tenant, user=owner).role == Role.OWNER
    assert f"{settings.SITE_URL}/accounts/login/" in out
    assert "Created tenant initech (Initech) with owner bill@initech.example." in out


def test_create_tenant_reuses_an_existing_user(tenant, owner, password_file):
    run("create_tenant", "--slug", "second", "--name", "Second", "--owner-email", owner.email,
        "--owner-password-file", str(password_file))  # fmt: skip
    assert Membership.objects.get(tenant__slug="second", user=owner).role == Role.OWNER
    assert User.objects.filter(email=owner.email).count() == 1


def test_create_tenant_fails_clearly_on_an_existing_slug(tenant, password_file):
    with pytest.raises(CommandError, match="already taken"):
        run("create_tenant", "--slug", "acme", "--name", "Acme 2", "--owner-email", "x@example.com",
            "--owner-password-file", str(password_file))  # fmt: skip
    assert not User.objects.filter(email="x@example.com").exists()


@pytest.mark.parametrize(
    "slug, message", [("Bad Slug", "Invalid slug"), ("-x", "Invalid slug"), ("admin", "reserved")]
)
def test_create_tenant_fails_clearly_on_a_bad_slug(db, password_file, slug, message):
    with pytest.raises(CommandError, match=message):
        run("create_tenant", f"--slug={slug}", "--name", "X", "--owner-email", "x@example.com",
            "--owner-password-file", str(password_file))  # fmt: skip
    assert not Tenant.objects.exists()


def test_create_tenant_fails_clearly_on_a_missing_password_file(db, tmp_path):
    with pytest.raises(CommandError, match="Cannot read the password file"):
        run("create_tenant", "--slug", "x", "--name", "X", "--owner-email", "x@example.com",
            "--owner-password-file", str(tmp_path / "missing"))  # fmt: skip


def test_bootstrap_demo_creates_once_and_prints_credentials(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first = run("bootstrap_demo")
    assert Tenant.objects.count() == 1
    owner = User.objects.get(email="owner@demo.test")
    password = next(line.split()[-1] for line in first.splitlines() if "Password:" in line)
    assert owner.check_password(password)
    assert "owner@demo.test" in first
    assert (tmp_path / "demo-credentials.txt").stat().st_mode & 0o777 == 0o600

    second = run("bootstrap_demo")
    assert Tenant.objects.count() == 1
    assert User.objects.count() == 1
    assert "Demo workspace created" not in second
    assert password in second  # the saved credentials are shown again
