"""Refuse admin-entered mail hosts that point inside our own network, before any connection is made.

An admin types a host name; without this check the helpdesk would happily connect to 127.0.0.1, the private
network or the cloud metadata service on the admin's behalf (server-side request forgery). `resolve_checked`
resolves the name once, checks every address, and returns the IP the caller must connect to, so a second
lookup cannot return something else (DNS rebinding). TLS still verifies the original host name.
"""

from __future__ import annotations

import ipaddress
import socket

import dns.exception
import dns.resolver
from django.conf import settings

from mailboxes.errors import HostNotFound, NetworkError, UnsafeHost
from mailboxes.resolver import make_resolver, uses_custom_nameservers

__all__ = ["UnsafeHost", "resolve_checked", "unsafe_reason"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud instance metadata services: never a mail server, refused even when private hosts are allowed.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "169.254.169.123", "100.100.100.200", "fd00:ec2::254")
)
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address hidden in an IPv6 one (mapped, NAT64, 6to4, Teredo), else the address itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return ip.ipv4_mapped
        if ip in NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.sixtofour:
            return ip.sixtofour
        if ip.teredo:
            return ip.teredo[1]
    return ip


def unsafe_reason(ip: IPAddress, *, allow_private: bool) -> str | None:
    """Why connecting to `ip` is refused, in plain words; None when it is fine."""
    ip = _embedded_ipv4(ip)
    if ip in METADATA_ADDRESSES:
        return "the cloud metadata service"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_loopback:
        return None if allow_private else "this machine itself (loopback)"
    if ip.is_link_local:
        return None if allow_private else "a link-local address"
    if ip.is_private or (isinstance(ip, ipaddress.IPv4Address) and ip in SHARED_ADDRESS_SPACE):
        return None if allow_private else "a private network address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return None if allow_private else "an address that is not on the public internet"
    return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of `host` (an IP literal gives itself); HostNotFound when the name does not exist."""
    name = host.strip().strip("[]").rstrip(".")
    if not name:
        raise HostNotFound("No host name was given.", "Enter the server's host name, e.g. imap.example.com.")
    try:
        return [ipaddress.ip_address(name.split("%", 1)[0])]
    except ValueError:
        pass
    if uses_custom_nameservers():
        found = _resolve_dns(name)
        if found is not None:
            return found
    return _resolve_system(name, port)


def _not_found(name: str, detail: str = "") -> HostNotFound:
    return HostNotFound(
        f"The host name “{name}” could not be found.",
        "Check the spelling of the host name, e.g. imap.example.com. A new domain may need a few hours to appear.",
        detail=detail,
    )


def _resolve_dns(name: str) -> list[IPAddress] | None:
    """Ask the configured nameservers; None when they do not serve this name (fall back to the system)."""
    resolver = make_resolver()
    if resolver is None:
        return None
    found: list[IPAddress] = []
    for rdtype in ("A", "AAAA"):
        try:
            answer = resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN as exc:
            raise _not_found(name, str(exc)) from None
        except dns.resolver.NoAnswer:
            continue
        except (dns.resolver.NoNameservers, dns.exception.Timeout):
            return None
        found += [ipaddress.ip_address(r.address) for r in answer]
    if not found:
        raise _not_found(name, "no A or AAAA records")
    return found


def _resolve_system(name: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            raise NetworkError(
                f"The host name “{name}” could not be looked up right now.",
                "The name server did not answer. Try again in a few minutes.",
                detail=str(exc),
            ) from None
        raise _not_found(name, str(exc)) from None
    seen: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in seen:
            seen.append(ip)
    return seen


def private_hosts_allowed(allow_private: bool) -> bool:
    return allow_private or settings.MAILBOX_ALLOW_PRIVATE_HOSTS


def resolve_checked(host: str, port: int, *, allow_private: bool) -> str:
    """The IP to connect to for `host`, after refusing internal addresses; raises UnsafeHost or HostNotFound.

    Loopback, private and link-local addresses pass only when `allow_private` (the mailbox flag, set by ops)
    or the MAILBOX_ALLOW_PRIVATE_HOSTS setting says so; metadata, multicast, reserved and unspecified
    addresses never pass. The first acceptable address is returned; connect to it, not to `host`.
    """
    if not 0 < int(port) < 65536:
        raise UnsafeHost(f"Port {port} is not a valid port.", "Use a port between 1 and 65535.")
    allow = private_hosts_allowed(allow_private)
    # IPv4 first: many hosts (and containers) have no working IPv6 route, and we try only one address.
    addresses = sorted(resolve(host, port), key=lambda ip: ip.version)
    first_reason = ""
    for ip in addresses:
        reason = unsafe_reason(ip, allow_private=allow)
        if reason is None:
            return str(ip)
        if not first_reason:
            first_reason = reason if str(ip) == host.strip("[]") else f"points to {ip}, {reason}"
    if first_reason[0].isalpha() and not first_reason.startswith("points"):
        first_reason = f"is {first_reason}"
    raise UnsafeHost(f"“{host}” {first_reason}. For safety, the helpdesk does not connect there.")
