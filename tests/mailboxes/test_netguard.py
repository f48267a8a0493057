"""Admin-entered hosts pointing inside our network are refused before any connection is made."""

import ipaddress
import socket
import threading

import pytest

from mailboxes import connection_test, imap
from mailboxes import smtp as smtp_session
from mailboxes.errors import HostNotFound, UnsafeHost
from mailboxes.models import ConnectionTest
from mailboxes.netguard import resolve_checked, unsafe_reason
from tests.mailboxes.conftest import make_mailbox


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "169.254.1.1", "100.64.0.1",
     "0.0.0.0", "224.0.0.1", "240.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
     "64:ff9b::a9fe:a9fe", "2002:7f00:1::", "fd00:ec2::254", "::"],
)  # fmt: skip
def test_internal_addresses_are_refused(address):
    assert unsafe_reason(ipaddress.ip_address(address), allow_private=False)


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "1.1.1.1"])
def test_public_addresses_pass(address):
    assert unsafe_reason(ipaddress.ip_address(address), allow_private=False) is None


def test_allowing_private_hosts_never_allows_metadata_or_multicast():
    for address in ("127.0.0.1", "10.0.0.1", "fe80::1", "::ffff:192.168.0.1"):
        assert unsafe_reason(ipaddress.ip_address(address), allow_private=True) is None
    for address in ("169.254.169.254", "fd00:ec2::254", "224.0.0.1", "0.0.0.0", "::ffff:169.254.169.254"):
        assert unsafe_reason(ipaddress.ip_address(address), allow_private=True)


@pytest.mark.parametrize(
    ("host", "expected"),
    [("private.test", "10.0.0.1, a private network address"),
     ("metadata.test", "169.254.169.254, the cloud metadata service"),
     ("loop.test", "127.0.0.1, this machine itself (loopback)"),
     ("mcast.test", "224.0.0.1, a multicast address")],
)  # fmt: skip
def test_names_resolving_to_internal_addresses_are_refused(dns, settings, host, expected):
    settings.MAILBOX_ALLOW_PRIVATE_HOSTS = False
    with pytest.raises(UnsafeHost) as info:
        resolve_checked(host, 993, allow_private=False)
    assert (
        info.value.message
        == f"“{host}” points to {expected}. For safety, the helpdesk does not connect there."
    )


def test_the_setting_or_the_mailbox_flag_allow_private_hosts(dns, settings):
    settings.MAILBOX_ALLOW_PRIVATE_HOSTS = False
    assert resolve_checked("loop.test", 993, allow_private=True) == "127.0.0.1"
    settings.MAILBOX_ALLOW_PRIVATE_HOSTS = True
    assert resolve_checked("loop.test", 993, allow_private=False) == "127.0.0.1"
    with pytest.raises(UnsafeHost):
        resolve_checked("metadata.test", 993, allow_private=True)


def test_unknown_name_is_host_not_found(dns):
    with pytest.raises(HostNotFound):
        resolve_checked("nothing.unknown-domain.test", 993, allow_private=True)


class AcceptCounter:
    """A listening socket on 127.0.0.1 that counts the connections made to it."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def listener():
    counter = AcceptCounter()
    yield counter
    counter.close()


@pytest.fixture
def connections(monkeypatch):
    """Every outgoing TCP connection attempt made through socket.create_connection."""
    attempts = []
    original = socket.create_connection

    def spy(address, *args, **kwargs):
        attempts.append(address)
        return original(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", spy)
    return attempts


@pytest.mark.django_db
def test_loopback_is_refused_before_connecting(tenant, dns, settings, listener, connections):
    settings.MAILBOX_ALLOW_PRIVATE_HOSTS = False
    mailbox = make_mailbox(
        tenant, imap_host="loop.test", imap_port=listener.port, smtp_host="127.0.0.1", smtp_port=listener.port
    )
    with pytest.raises(UnsafeHost), imap.session(mailbox):
        pass
    with pytest.raises(UnsafeHost), smtp_session.session(mailbox):
        pass
    test = connection_test.run(ConnectionTest.objects.create(tenant=tenant, mailbox=mailbox))
    assert test.error_code == "unsafe_host"
    assert listener.accepted == 0
    assert connections == []

    settings.MAILBOX_ALLOW_PRIVATE_HOSTS = True  # the same listener does get a connection when allowed
    with pytest.raises(Exception), imap.session(mailbox):  # noqa: B017 - it is no IMAP server
        pass
    assert listener.accepted == 1


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["private.test", "metadata.test", "10.0.0.1", "169.254.169.254"])
def test_private_and_metadata_hosts_are_refused_before_connecting(tenant, dns, settings, connections, host):
    settings.MAILBOX_ALLOW_PRIVATE_HOSTS = False
    mailbox = make_mailbox(tenant, imap_host=host, imap_port=993, smtp_host=host, smtp_port=587)
    test = connection_test.run(ConnectionTest.objects.create(tenant=tenant, mailbox=mailbox))
    assert [s["code"] for s in test.steps if not s["ok"] and not s["skipped"]] == [
        "unsafe_host",
        "unsafe_host",
    ]
    assert connections == []
