"""A private dnsmasq answering for ``*.test`` only, so mail-server discovery (MX, RFC 6186 SRV, provider
detection) and SSRF guards are tested against real DNS answers, with nothing forwarded to the internet.

Every unknown name under ``.test`` is NXDOMAIN (``local=/test/``); names outside ``.test`` get REFUSED at once
(no upstream servers). dnsmasq does not reload host/MX/SRV records on SIGHUP, so ``with_records()`` restarts
it on the same port (a few milliseconds).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.rig import deps, procs
from tests.rig.ports import LOOPBACK, free_port

# Raw dnsmasq configuration lines (see ``man dnsmasq``): host-record=name,ip; mx-host=domain,target,prio;
# srv-host=_svc._proto.domain,target,port,priority,weight; txt-record=name,"text"; cname=alias,target.
BASE_RECORDS: tuple[str, ...] = (
    # example.test: self-hosted mail (RFC 6186 SRV with the standard ports; point them at the rig's ports
    # with with_records() when a test connects after discovery).
    "host-record=mail.example.test,127.0.0.1",
    "host-record=imap.example.test,127.0.0.1",
    "host-record=smtp.example.test,127.0.0.1",
    "host-record=autoconfig.example.test,127.0.0.1",
    "mx-host=example.test,mail.example.test,10",
    "mx-host=example.test,backup-mx.example.test,20",
    "srv-host=_imap._tcp.example.test,imap.example.test,143,0,1",
    "srv-host=_imaps._tcp.example.test,imap.example.test,993,0,1",
    "srv-host=_submission._tcp.example.test,smtp.example.test,587,0,1",
    "srv-host=_submissions._tcp.example.test,smtp.example.test,465,0,1",
    "srv-host=_pop3._tcp.example.test,.,0",  # RFC 6186 "service not offered": 0 0 0 .
    'txt-record=example.test,"v=spf1 mx ip4:127.0.0.1 -all"',
    'txt-record=_dmarc.example.test,"v=DMARC1; p=reject; rua=mailto:dmarc@example.test"',
    "cname=webmail.example.test,mail.example.test",
    # Provider detection: Microsoft 365 and Google Workspace tenants.
    "mx-host=m365tenant.test,m365tenant-test.mail.protection.outlook.com,0",
    'txt-record=m365tenant.test,"v=spf1 include:spf.protection.outlook.com -all"',
    "cname=autodiscover.m365tenant.test,autodiscover.outlook.com",
    "mx-host=gtenant.test,aspmx.l.google.com,1",
    "mx-host=gtenant.test,alt1.aspmx.l.google.com,5",
    'txt-record=gtenant.test,"v=spf1 include:_spf.google.com ~all"',
    # SSRF guards: names that resolve to addresses the helpdesk must refuse to connect to.
    "host-record=private.test,10.0.0.1",
    "host-record=metadata.test,169.254.169.254",
    "host-record=loop.test,127.0.0.1",
    "host-record=mcast.test,224.0.0.1",
    # Only the implicit-TLS SRV records, nothing else (no MX, no A for the domain itself).
    "srv-host=_submissions._tcp.srvonly.test,mail.srvonly.test,465,0,1",
    "srv-host=_imaps._tcp.srvonly.test,mail.srvonly.test,993,0,1",
    "host-record=mail.srvonly.test,127.0.0.1",
    # unknown-domain.test (and any other unlisted *.test name): NXDOMAIN, from local=/test/ below.
)


@dataclass
class _Running:
    """The current dnsmasq process; replaced by restarts (the fixture object itself is frozen)."""

    process: procs.Process | None = None
    records: tuple[str, ...] = ()
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class DnsServer:
    """A running dnsmasq on ``host:port`` (UDP and TCP)."""

    host: str
    port: int
    root: Path
    binary: str = field(repr=False)
    running: _Running = field(repr=False, compare=False)

    @property
    def records(self) -> tuple[str, ...]:
        return self.running.records

    def resolver(self, lifetime: float = 2.0) -> Any:
        """A dnspython Resolver that asks only this server (``/etc/resolv.conf`` is ignored)."""
        import dns.resolver

        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [self.host]
        resolver.port = self.port
        resolver.lifetime = lifetime
        resolver.cache = None
        return resolver

    @contextlib.contextmanager
    def with_records(self, extra: Iterable[str]) -> Iterator[DnsServer]:
        """Serve ``BASE_RECORDS + extra`` (raw dnsmasq lines) inside the block, then the base set again."""
        self.restart(BASE_RECORDS + tuple(extra))
        try:
            yield self
        finally:
            self.restart(BASE_RECORDS)

    def restart(self, records: Iterable[str]) -> None:
        """Replace the running dnsmasq with one serving ``records`` on the same port."""
        with self.running.lock:
            if self.running.process is not None:
                self.running.process.stop()
            self.running.records = tuple(records)
            self.running.process = _spawn(self.binary, self.root, self.port, self.running.records)

    def stop(self) -> None:
        with self.running.lock:
            if self.running.process is not None:
                self.running.process.stop()
                self.running.process = None


def _config(port: int, records: Iterable[str]) -> str:
    lines = [
        f"port={port}",
        f"listen-address={LOOPBACK}",
        "bind-interfaces",
        "no-resolv",  # no upstream: out-of-zone names are REFUSED instead of leaking to real DNS
        "no-hosts",
        "no-poll",
        "no-negcache",
        "log-queries",
        "log-facility=-",  # stderr, i.e. our log file (we run it in the foreground)
        "pid-file=",
        "local-ttl=300",
        "local=/test/",
    ]
    if procs.is_root():
        lines += ["user=nobody", "group=nogroup"]
    return "\n".join([*lines, *records]) + "\n"


def _spawn(binary: str, root: Path, port: int, records: tuple[str, ...]) -> procs.Process:
    conf = root / "dnsmasq.conf"
    conf.write_text(_config(port, records))
    os.chmod(conf, 0o644)
    proc = procs.spawn(
        "dnsmasq", [binary, "--keep-in-foreground", f"--conf-file={conf}"], log_path=root / "dnsmasq.log"
    )
    proc.wait_for_ports([port], timeout=10)
    return proc


def start_dnsmasq(root: Path) -> DnsServer:
    binary = deps.require("dns", {"dnsmasq": "dnsmasq-base"})["dnsmasq"]
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = DnsServer(LOOPBACK, port, root, binary, _Running())
    server.restart(BASE_RECORDS)
    return server
