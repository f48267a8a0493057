"""The DNS resolver for admin-entered names: the system's, or the nameservers ops (and tests) configure."""

from __future__ import annotations

import dns.resolver
from django.conf import settings


def make_resolver() -> dns.resolver.Resolver | None:
    """A dnspython resolver for DNS_RESOLVER_NAMESERVERS/PORT, or one reading /etc/resolv.conf when unset.

    Returns None only when no nameserver can be found at all (a container without resolv.conf).
    """
    nameservers = [n for n in settings.DNS_RESOLVER_NAMESERVERS if n]
    try:
        resolver = dns.resolver.Resolver(configure=not nameservers)
    except dns.resolver.NoResolverConfiguration:
        return None
    if nameservers:
        resolver.nameservers = nameservers
        resolver.port = settings.DNS_RESOLVER_PORT
    resolver.lifetime = settings.DNS_RESOLVER_TIMEOUT
    resolver.timeout = min(resolver.timeout, settings.DNS_RESOLVER_TIMEOUT)
    return resolver


def uses_custom_nameservers() -> bool:
    return any(settings.DNS_RESOLVER_NAMESERVERS)
