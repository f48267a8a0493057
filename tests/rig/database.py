"""Early pytest plugin: decide ``DATABASE_URL`` and ``REDIS_URL`` before Django reads its settings.

pytest-django imports ``helpdesk.settings`` in its own ``pytest_load_initial_conftests`` hook, before any
conftest.py is loaded, and settings.py reads both URLs from the environment at import time. So this module
is loaded with ``-p tests.rig.database`` (pyproject ``addopts``) and its hook runs ``tryfirst``.

Resolution, for each of the two:

1. the variable is already set: use it as is (CI services, a developer's own server);
2. the default local server answers (PostgreSQL 127.0.0.1:5432 as ``postgres`` with trust auth, Redis
   127.0.0.1:6379): use it, creating nothing; pytest-django creates and drops ``test_helpdesk`` itself;
3. otherwise (or with ``RIG_PRIVATE_SERVERS=1``) start a private server on a free port in a temporary folder,
   stopped in ``pytest_unconfigure``.

Two runs sharing the default servers at the same time (two terminals, an editor's test runner) would both
create and drop ``test_helpdesk`` and flush the same Redis database. So each run claims a *slot* with a lock
file in the temp dir (released by the OS when the run ends, even on kill -9): slot 0 gets ``helpdesk`` and
Redis db 0, slot n gets ``helpdesk_n`` and db n. Names stay stable, so ``--reuse-db`` keeps working.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.rig import deps, procs
from tests.rig.ports import LOOPBACK, free_port

SHARED_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/{name}"
SHARED_REDIS_URL = "redis://127.0.0.1:6379/{db}"
POSTGRES_SLOTS = 8
REDIS_SLOTS = 16  # Redis' default number of databases


@dataclass(frozen=True)
class Resolved:
    """Where a URL came from: ``env``, ``shared`` (default local port) or ``private`` (started here)."""

    name: str
    url: str
    source: str
    start_seconds: float = 0.0


resolved: dict[str, Resolved] = {}
_private: list[procs.Process] = []
_temp_dirs: list[Path] = []
_slot_locks: list[int] = []  # open file descriptors holding our slot locks for the whole run


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    ns = early_config.known_args_namespace
    if getattr(ns, "help", False) or getattr(ns, "version", False):
        return
    _resolve("DATABASE_URL", _shared_postgres, _start_postgres)
    _resolve("REDIS_URL", _shared_redis, _start_redis)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"rig: {r.name}={r.url} ({r.source}{_took(r)})" for r in resolved.values()]


def pytest_unconfigure(config: pytest.Config) -> None:
    stop_private_servers()


def stop_private_servers() -> None:
    """Stop what this module started and delete its folders (also safe to call twice)."""
    while _private:
        _private.pop().stop()
    while _temp_dirs:
        shutil.rmtree(_temp_dirs.pop(), ignore_errors=True)
    while _slot_locks:  # after pytest-django dropped the test database (session teardown)
        os.close(_slot_locks.pop())


def _took(r: Resolved) -> str:
    return f", started in {r.start_seconds:.2f}s" if r.source == "private" else ""


def _resolve(name: str, shared: Callable[[], str | None], start: Callable[[], str | None]) -> None:
    if os.environ.get(name):
        resolved[name] = Resolved(name, os.environ[name], "env")
        return
    url = None if os.environ.get("RIG_PRIVATE_SERVERS") else shared()
    if url:
        resolved[name] = Resolved(name, url, "shared")
    else:
        t0 = time.monotonic()
        url = start()
        if url is None:  # binary missing and not in CI: settings fall back to their embedded defaults
            return
        resolved[name] = Resolved(name, url, "private", time.monotonic() - t0)
    os.environ[name] = url


# --- PostgreSQL ---------------------------------------------------------------------------------------------


def _pg_connects(host: str, port: int, user: str = "postgres") -> bool:
    """True when a trust-auth login works (not just an open port: a server asking for a password is no use)."""
    try:
        import psycopg
    except ImportError:
        return _tcp_open(port)
    try:
        with psycopg.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def _shared_postgres() -> str | None:
    if not (_tcp_open(5432) and _pg_connects(LOOPBACK, 5432)):
        return None
    slot = _claim_slot("postgres-5432", POSTGRES_SLOTS)
    if slot is None:
        return None  # every slot busy: a private server it is
    return SHARED_POSTGRES_URL.format(name="helpdesk" if slot == 0 else f"helpdesk_{slot}")


def _postgres_bindir() -> Path | None:
    """Debian keeps initdb/postgres in /usr/lib/postgresql/<version>/bin, off PATH; prefer the newest."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name or 0))
    for d in reversed(dirs):
        if (Path(d) / "initdb").exists():
            return Path(d)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _start_postgres() -> str | None:
    bindir = _postgres_bindir()
    if bindir is None:
        return _missing("DATABASE_URL", "postgresql", "PostgreSQL (initdb) not found; tests use SQLite")
    root = _temp_dir("helpdesk-pg-")
    # initdb and postgres refuse to run as root: run them as the postgres account, which must own the folder.
    user = "postgres" if procs.is_root() else None
    if user:
        uid, gid = procs.user_ids(user)
        os.chown(root, uid, gid)
    data = root / "data"
    procs.run(
        [
            *(bindir / "initdb", "-D", data, "-U", "postgres", "-A", "trust"),
            *("--no-sync", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"),
        ],
        user=user,
        timeout=60,
    )
    port = free_port()
    proc = procs.spawn(
        "postgres",
        [
            *(bindir / "postgres", "-D", data, "-p", str(port), "-k", root),
            *("-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"),
            *("-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
        ],
        log_path=root / "server.log",
        user=user,
        stop_signal=signal.SIGINT,  # = "fast" shutdown; the data is thrown away anyway
    )
    _private.append(proc)
    proc.wait_until(lambda: _pg_connects(LOOPBACK, port), 30, "connections")
    return f"postgres://postgres@127.0.0.1:{port}/helpdesk"


# --- Redis --------------------------------------------------------------------------------------------------


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _shared_redis() -> str | None:
    if not _redis_ping(6379):
        return None
    slot = _claim_slot("redis-6379", REDIS_SLOTS)
    return None if slot is None else SHARED_REDIS_URL.format(db=slot)


def _start_redis() -> str | None:
    binary = deps.find_binary("redis-server")
    if binary is None:
        return _missing(
            "REDIS_URL", "redis-server", "redis-server not found; tests use the local-memory cache"
        )
    root = _temp_dir("helpdesk-redis-")
    port = free_port()
    proc = procs.spawn(
        "redis",
        [
            *(binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", "no", "--dir", root, "--daemonize", "no"),
        ],
        log_path=root / "redis.log",
    )
    _private.append(proc)
    proc.wait_until(lambda: _redis_ping(port), 15, "PING")
    return f"redis://127.0.0.1:{port}/0"


# --- helpers ------------------------------------------------------------------------------------------------


def _tcp_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.5):
        return True
    return False


def _claim_slot(kind: str, slots: int) -> int | None:
    """Lock the first free ``helpdesk-rig-<kind>-<n>.lock``; the lock lives as long as this process."""
    for n in range(slots):
        path = Path(tempfile.gettempdir()) / f"helpdesk-rig-{kind}-{n}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _slot_locks.append(fd)
        return n
    return None


def _temp_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    _temp_dirs.append(path)
    return path


def _missing(name: str, package: str, message: str) -> None:
    """No server and no binary: a usage error in CI; elsewhere run on the settings' embedded defaults."""
    deps.missing_packages.setdefault(package)
    if deps.in_ci():
        raise pytest.UsageError(f"{name} is not set and {message.split(';')[0]}; install {package}")
    resolved[name] = Resolved(name, "(unset)", message)
    return None
