"""Loopback ports chosen at run time.

Fixed ports would make two test runs on one machine (two checkouts, CI jobs sharing a runner) fight over
the same sockets, so every server gets ports from the kernel (bind to port 0). A port handed out once is
never handed out again in this process, so two servers started one after the other cannot get the same
number before the first one has bound it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

LOOPBACK = "127.0.0.1"

_lock = threading.Lock()
_handed_out: set[int] = set()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now and was not handed out before."""
    with _lock:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((LOOPBACK, 0))
                port = s.getsockname()[1]
            # UDP too: dnsmasq binds both, and a port free for TCP may be taken for UDP.
            if port in _handed_out or not _udp_bindable(port):
                continue
            _handed_out.add(port)
            return port
    raise RuntimeError("could not find a free loopback port")


def _udp_bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct free ports."""
    return [free_port() for _ in range(count)]


def is_listening(port: int, host: str = LOOPBACK, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """Yield a port where connections are refused at once (ECONNREFUSED).

    The socket stays *bound but not listening* while the context is open: the kernel answers SYNs with RST,
    and no other process can grab the port in the meantime (a closed port could be reused by anyone).
    """
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((LOOPBACK, 0))
        yield s.getsockname()[1]
    finally:
        s.close()


@contextlib.contextmanager
def silent_port(backlog: int = 64) -> Iterator[int]:
    """Yield a port that accepts TCP connections but never says anything (for client timeout tests).

    The socket listens but nobody calls accept(): the kernel completes the handshake for up to ``backlog``
    clients, which then wait forever for a greeting. No thread is needed.
    """
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((LOOPBACK, 0))
        s.listen(backlog)
        yield s.getsockname()[1]
    finally:
        s.close()
