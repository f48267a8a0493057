"""The rig's fixtures (load with ``pytest_plugins = ["tests.rig.plugin"]`` in the root conftest.py).

Every server fixture is session-scoped and lazy: nothing starts until a test asks for it, then it runs for
the rest of the session on free ports in one temporary folder and is stopped at the end (also on Ctrl-C:
pytest tears session fixtures down on KeyboardInterrupt, and ``pytest_unconfigure``/``atexit`` stop anything
left). Each fixture yields a frozen dataclass describing the server, with helper methods.

Missing binaries skip the tests that need them (fail them when ``CI=true``); the session ends with one line
naming the packages to install. The start-up time of each server is printed at the end as well.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.rig import browser, deps, procs
from tests.rig import ports as rig_ports
from tests.rig.dns import DnsServer, start_dnsmasq
from tests.rig.dovecot import Dovecot, start_dovecot
from tests.rig.oauth import OAuthServer, start_oauth_server
from tests.rig.postfix import DEFAULT_DOMAINS, Postfix, start_postfix
from tests.rig.s3 import S3Server, start_seaweedfs
from tests.rig.smtp import SmtpServer, start_smtp_server
from tests.rig.tls import TlsFiles, create_tls_files

start_times: dict[str, float] = {}
_missing_server_tests = 0


def _timed[T](name: str, start: Callable[[], T]) -> T:
    t0 = time.monotonic()
    result = start()
    start_times[name] = time.monotonic() - t0
    return result


# --- hooks --------------------------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    # browser_type_launch_args is registered here, not defined in this module: a fixture override only
    # wins when its plugin is registered after pytest-playwright's, which is not the case with
    # "-p tests.rig.plugin". Every plugin loaded at start-up is registered by now, however we were loaded.
    if not config.pluginmanager.is_registered(browser):
        config.pluginmanager.register(browser, "tests.rig.browser")
    if "tests.rig.database" not in sys.modules:
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                "tests.rig.database is not loaded: add '-p tests.rig.database' to addopts, otherwise "
                "DATABASE_URL/REDIS_URL are not resolved before Django reads its settings"
            ),
            stacklevel=2,
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    procs.stop_all()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    global _missing_server_tests
    if report.when == "setup" and not report.passed and deps.SKIP_MARKER in str(report.longrepr):
        _missing_server_tests += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if start_times:
        timings = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in start_times.items())
        terminalreporter.write_line(f"rig start-up: {timings} (total {sum(start_times.values()):.2f}s)")
    if deps.missing_packages:
        packages = " ".join(deps.missing_packages)
        verb = "failed" if deps.in_ci() else "skipped"
        terminalreporter.write_line(
            f"{verb} {_missing_server_tests} tests: install {packages} (make test does this as root)",
            yellow=True,
        )


# --- shared -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def rig_dir() -> Iterator[Path]:
    """The session's folder for every server's config, data and logs. ``RIG_KEEP=1`` keeps it afterwards.

    Mode 0711 because the servers' own accounts (postfix, nobody, dovecot) must traverse it.
    """
    path = Path(tempfile.mkdtemp(prefix="helpdesk-rig-"))
    path.chmod(0o711)
    yield path
    if os.environ.get("RIG_KEEP"):
        print(f"\nrig: kept {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def rig_tls(rig_dir: Path) -> TlsFiles:
    """CA, certificate and key used by every TLS server; trust ``ca_path`` in clients."""
    return _timed("tls", lambda: create_tls_files(rig_dir / "tls"))


@pytest.fixture(scope="session")
def rig_mail_domains() -> tuple[str, ...]:
    """Domains Postfix delivers to Dovecot. Override this fixture, or set ``RIG_MAIL_DOMAINS=a.test,b.test``."""
    extra = [d.strip() for d in os.environ.get("RIG_MAIL_DOMAINS", "").split(",") if d.strip()]
    return (*DEFAULT_DOMAINS, *extra)


# --- servers ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def oauth_server(rig_dir: Path) -> Iterator[OAuthServer]:
    """The OAuth2/OIDC identity provider (django-oauth-toolkit)."""
    server = _timed("oauth", lambda: start_oauth_server(rig_dir / "oauth"))
    yield server
    if server.process is not None:
        server.process.stop()


@pytest.fixture(scope="session")
def dovecot(rig_dir: Path, rig_tls: TlsFiles, oauth_server: OAuthServer) -> Iterator[Dovecot]:
    """Dovecot: IMAP/IMAPS/LMTP, passwords and XOAUTH2/OAUTHBEARER (tokens from ``oauth_server``)."""
    server = _timed("dovecot", lambda: start_dovecot(rig_dir / "dovecot", rig_tls, oauth_server))
    yield server
    server.process.stop()


@pytest.fixture(scope="session")
def postfix(
    rig_dir: Path, rig_tls: TlsFiles, dovecot: Dovecot, rig_mail_domains: tuple[str, ...]
) -> Iterator[Postfix]:
    """Postfix: submission/smtps with Dovecot SASL, LMTP delivery into ``dovecot``, other mail to ``.sink``."""

    def start() -> Postfix:
        sink = start_smtp_server(None, None, sink=True)
        try:
            return start_postfix(rig_dir / "postfix", rig_tls, dovecot, sink, rig_mail_domains)
        except BaseException:
            sink.stop()
            raise

    server = _timed("postfix", start)
    yield server
    server.process.stop()
    server.sink.stop()


@pytest.fixture(scope="session")
def smtp_server(rig_tls: TlsFiles, oauth_server: OAuthServer) -> Iterator[SmtpServer]:
    """The aiosmtpd submission server, shared by the session (see ``smtp`` for a per-test reset)."""
    server = _timed("aiosmtpd", lambda: start_smtp_server(rig_tls, oauth_server))
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_server: SmtpServer) -> SmtpServer:
    """``smtp_server`` reset for this test: no captured mail, no pending failure injections."""
    smtp_server.reset()
    return smtp_server


@pytest.fixture(scope="session")
def s3_server(rig_dir: Path) -> Iterator[S3Server]:
    """SeaweedFS S3 with ``bucket`` created; ``new_bucket()`` for isolation between tests."""
    server = _timed("seaweedfs", lambda: start_seaweedfs(rig_dir / "seaweedfs"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dns_server(rig_dir: Path) -> Iterator[DnsServer]:
    """dnsmasq serving the ``*.test`` zones; ``resolver()`` gives a dnspython resolver pointed at it."""
    server = _timed("dnsmasq", lambda: start_dnsmasq(rig_dir / "dns"))
    yield server
    server.stop()


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port where connections are refused immediately."""
    with rig_ports.refused_port() as port:
        yield port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never sends a byte (client timeout tests)."""
    with rig_ports.silent_port() as port:
        yield port


# --- browser ------------------------------------------------------------------------------------------------


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[..., Path]:
    """``screenshot(page, name="")`` saves a full-page PNG under test-artifacts/screenshots/ and returns its
    path."""

    def take(page: Any, name: str = "") -> Path:
        path = browser.screenshot_path(request.config.rootpath, request.node.nodeid, name)
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
