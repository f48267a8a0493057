"""Start, watch and stop server processes: the one place that knows how the rig runs a subprocess.

Every server runs in the *foreground* (no daemonizing) in its own session, with stdout/stderr in a log
file. That gives us a pid we own: stopping means signalling that pid (and its process group), never a
``pkill`` by name that could hit another test run's servers. ``stop_all()`` is the safety net for Ctrl-C
and crashes: the plugin calls it from ``pytest_unconfigure`` and ``atexit``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.rig.ports import is_listening


class RigStartError(RuntimeError):
    """A server did not come up; the message carries the tail of its log."""


def log_tail(path: Path, lines: int = 40) -> str:
    """Last lines of a log file, for error messages ("" when there is no file yet)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Process:
    """A running server process that we started and must stop."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 5.0
    extra_logs: Sequence[Path] = field(default_factory=tuple)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def describe_failure(self, what: str) -> str:
        """Error text naming the server, its exit status and the end of its logs."""
        status = "running" if self.alive() else f"exited with {self.popen.returncode}"
        parts = [f"{self.name}: {what} ({status}); log {self.log_path}:", log_tail(self.log_path)]
        for extra in self.extra_logs:
            parts += [f"--- {extra}:", log_tail(extra)]
        return "\n".join(parts)

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``ready()`` until it is true; fail fast with the log tail if the process dies."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            if ready():
                return
            if not self.alive():
                raise RigStartError(self.describe_failure(f"died before {what}"))
            if time.monotonic() > deadline:
                self.stop()
                raise RigStartError(
                    self.describe_failure(f"timed out after {timeout:.0f}s waiting for {what}")
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def wait_for_ports(self, ports: Sequence[int], timeout: float = 20.0) -> None:
        """Wait until every TCP port in ``ports`` accepts connections."""
        for port in ports:
            self.wait_until(lambda p=port: is_listening(p), timeout, f"port {port}")

    def stop(self) -> None:
        """Signal the process group, wait ``stop_timeout``, then SIGKILL what is left."""
        _unregister(self)
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, self.stop_signal)  # start_new_session=True made pid the group id
        try:
            self.popen.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(5)
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)  # stray children of a master that already exited


_registry_lock = threading.Lock()
_registry: list[Process] = []


def _unregister(proc: Process) -> None:
    with _registry_lock, contextlib.suppress(ValueError):
        _registry.remove(proc)


def stop_all() -> None:
    """Stop every process still registered, newest first (dependants before what they depend on)."""
    while True:
        with _registry_lock:
            if not _registry:
                return
            proc = _registry[-1]
        proc.stop()


atexit.register(stop_all)


def is_root() -> bool:
    return os.geteuid() == 0


def user_ids(user: str) -> tuple[int, int]:
    """(uid, gid) of a system user."""
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def spawn(
    name: str,
    argv: Sequence[str | os.PathLike[str]],
    *,
    log_path: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    stop_signal: int = signal.SIGTERM,
    stop_timeout: float = 5.0,
    extra_logs: Sequence[Path] = (),
) -> Process:
    """Start ``argv`` in the foreground of its own session, logging to ``log_path``.

    ``user`` runs it under that account (only when we are root), without ``runuser``: the pid we get is the
    server itself, so signals reach it directly.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    creds: dict[str, object] = {}
    if user and is_root():
        uid, gid = user_ids(user)
        creds = {"user": uid, "group": gid, "extra_groups": []}
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            [os.fspath(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,  # Ctrl-C in the terminal must not kill servers before teardown
            **creds,  # type: ignore[arg-type]
        )
    proc = Process(name, popen, log_path, stop_signal, stop_timeout, tuple(extra_logs))
    with _registry_lock:
        _registry.append(proc)
    return proc


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run a short command; raise RigStartError with its output when it fails."""
    creds: dict[str, object] = {}
    if user and is_root():
        uid, gid = user_ids(user)
        creds = {"user": uid, "group": gid, "extra_groups": []}
    args = [os.fspath(a) for a in argv]
    result = subprocess.run(
        args,
        input=input,
        capture_output=True,
        timeout=timeout,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        check=False,
        **creds,  # type: ignore[arg-type]
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace")
        raise RigStartError(f"{' '.join(args)} exited with {result.returncode}:\n{output}")
    return result
