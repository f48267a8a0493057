"""The ops commands: add_mailbox prints the new id, test_mailbox prints the plain-words result and exits 0/1."""

import io

import pytest
from django.core.management import CommandError, call_command

from mailboxes.models import Mailbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "password"
    path.write_text("supportpw\n")
    return path


def add(tenant, dovecot, smtp, password_file, *extra) -> str:
    out = io.StringIO()
    call_command(
        "add_mailbox", "--tenant", tenant.slug, "--email", "support@acme.test",
        "--imap-host", "127.0.0.1", "--imap-port", str(dovecot.imaps_port), "--imap-security", "ssl",
        "--smtp-host", "127.0.0.1", "--smtp-port", str(smtp.starttls_port), "--smtp-security", "starttls",
        "--username", "support@acme.test", "--password-file", str(password_file), "--no-test", *extra,
        stdout=out,
    )  # fmt: skip
    return out.getvalue().strip()


def test_add_mailbox_prints_the_id(tenant, dovecot, smtp, password_file):
    printed = add(tenant, dovecot, smtp, password_file, "--allow-private-hosts", "--default")
    mailbox = Mailbox.objects.get(pk=int(printed))
    assert (mailbox.tenant, mailbox.email, mailbox.imap_port) == (
        tenant,
        "support@acme.test",
        dovecot.imaps_port,
    )
    assert mailbox.imap_password == "supportpw"  # the trailing newline of the file is not part of it
    assert mailbox.allow_private_hosts and mailbox.is_default


def test_add_mailbox_refuses_unknown_tenant_and_duplicates(tenant, dovecot, smtp, password_file):
    add(tenant, dovecot, smtp, password_file)
    with pytest.raises(CommandError, match="already a mailbox"):
        add(tenant, dovecot, smtp, password_file)
    with pytest.raises(CommandError, match="No tenant"):
        call_command("add_mailbox", "--tenant", "nope", "--email", "a@b.test", "--imap-host", "h", "--smtp-host", "h",
                     "--password-file", str(password_file))  # fmt: skip


def test_test_mailbox_prints_the_result_and_exits_0(tenant, dovecot, smtp, password_file, rig_ca):
    mailbox_id = add(tenant, dovecot, smtp, password_file, "--allow-private-hosts")
    out = io.StringIO()
    call_command("test_mailbox", mailbox_id, stdout=out)
    text = out.getvalue()
    assert "[ok  ] Sign in to IMAP" in text and "[ok  ] Send a test email: Sent to support@acme.test" in text
    assert "Result: the mailbox works." in text


def test_test_mailbox_exits_1_with_the_reason(tenant, dovecot, smtp, password_file, rig_ca):
    """Without --allow-private-hosts, the rig's 127.0.0.1 is refused: the same words as in the UI."""
    mailbox_id = add(tenant, dovecot, smtp, password_file)
    out = io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command("test_mailbox", mailbox_id, stdout=out)
    assert info.value.returncode == 1
    text = out.getvalue()
    assert "[FAIL] Connect to the IMAP server" in text
    assert (
        "“127.0.0.1” is this machine itself (loopback). For safety, the helpdesk does not connect there."
        in text
    )
    assert "What to try:" in text and "Result: the mailbox does not work yet." in text


def test_test_mailbox_as_a_process_exit_status(
    tenant, dovecot, smtp, password_file, rig_ca, settings, transactional_db
):
    """The real exit status, from a separate process, as ops would run it (on the test database)."""
    import os
    import subprocess
    import sys

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        if db["NAME"] == ":memory:" or "mode=memory" in str(db["NAME"]):
            pytest.skip("an in-memory test database is not shared with a subprocess")
        url = f"sqlite:///{db['NAME']}"
    else:
        url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    ok_id = add(tenant, dovecot, smtp, password_file, "--allow-private-hosts")
    env = {**os.environ, "MAILBOX_CA_FILE": str(rig_ca), "HELPDESK_TESTING": "1", "DATABASE_URL": url}

    def run(mailbox_id: str) -> subprocess.CompletedProcess:
        argv = [sys.executable, "manage.py", "test_mailbox", mailbox_id]
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)

    result = run(ok_id)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the mailbox works" in result.stdout
    Mailbox.objects.filter(pk=ok_id).update(imap_password="wrong")
    result = run(ok_id)
    assert result.returncode == 1
    assert "did not accept the username or password" in result.stdout
