"""Guess an address's IMAP and SMTP settings: known providers first, then DNS (MX, then RFC 6186 SRV).

Never raises for an unknown or broken domain: the admin then simply fills the fields by hand.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import dns.exception
import dns.resolver

from mailboxes.models import Provider, Security
from mailboxes.resolver import make_resolver

logger = logging.getLogger(__name__)

GMAIL_HINT = (
    "Gmail and Google Workspace: “Connect with Google” is the easiest and safest way. With a password, you need "
    "an app password (Google Account → Security → 2-Step Verification → App passwords); the normal password is "
    "refused."
)
MICROSOFT_HINT = (
    "Microsoft 365 / Outlook: use “Connect with Microsoft”. Microsoft has switched off password sign-in for "
    "IMAP and SMTP on most accounts; where it is still on, SMTP AUTH must be enabled for the mailbox."
)
APP_PASSWORD_HINT = "{name} needs an app password for IMAP/SMTP, created in the account's security settings."


@dataclass(frozen=True)
class Preset:
    name: str
    imap_host: str
    smtp_host: str
    imap_port: int = 993
    imap_security: str = Security.SSL
    smtp_port: int = 465
    smtp_security: str = Security.SSL
    provider: str = Provider.OTHER
    hint: str = ""


GOOGLE = Preset(
    "Google (Gmail / Workspace)",
    "imap.gmail.com",
    "smtp.gmail.com",
    provider=Provider.GOOGLE,
    hint=GMAIL_HINT,
)
OFFICE365 = Preset(
    "Microsoft 365", "outlook.office365.com", "smtp.office365.com", smtp_port=587,
    smtp_security=Security.STARTTLS, provider=Provider.MICROSOFT, hint=MICROSOFT_HINT,
)  # fmt: skip
OUTLOOK_COM = Preset(
    "Outlook.com / Hotmail", "outlook.office365.com", "smtp-mail.outlook.com", smtp_port=587,
    smtp_security=Security.STARTTLS, provider=Provider.MICROSOFT, hint=MICROSOFT_HINT,
)  # fmt: skip
YAHOO = Preset(
    "Yahoo Mail", "imap.mail.yahoo.com", "smtp.mail.yahoo.com", hint=APP_PASSWORD_HINT.format(name="Yahoo")
)
AOL = Preset("AOL Mail", "imap.aol.com", "smtp.aol.com", hint=APP_PASSWORD_HINT.format(name="AOL"))
ICLOUD = Preset(
    "iCloud Mail", "imap.mail.me.com", "smtp.mail.me.com", smtp_port=587, smtp_security=Security.STARTTLS,
    hint="iCloud needs an app-specific password (appleid.apple.com → Sign-In and Security).",
)  # fmt: skip
GMX_DE = Preset(
    "GMX", "imap.gmx.net", "mail.gmx.net", smtp_port=587, smtp_security=Security.STARTTLS,
    hint="GMX: switch on “POP3/IMAP access” in the GMX mail settings first.",
)  # fmt: skip
GMX_COM = Preset(
    "GMX", "imap.gmx.com", "mail.gmx.com", smtp_port=587, smtp_security=Security.STARTTLS,
    hint="GMX: switch on “POP3/IMAP access” in the GMX mail settings first.",
)  # fmt: skip
WEBDE = Preset(
    "WEB.DE", "imap.web.de", "smtp.web.de", smtp_port=587, smtp_security=Security.STARTTLS,
    hint="WEB.DE: switch on “POP3/IMAP access” in the WEB.DE mail settings first.",
)  # fmt: skip
ZOHO = Preset(
    "Zoho Mail", "imap.zoho.com", "smtp.zoho.com", hint="Zoho: enable IMAP access in the Zoho Mail settings."
)
ZOHO_EU = Preset("Zoho Mail (EU)", "imap.zoho.eu", "smtp.zoho.eu", hint=ZOHO.hint)
FASTMAIL = Preset(
    "Fastmail", "imap.fastmail.com", "smtp.fastmail.com", hint=APP_PASSWORD_HINT.format(name="Fastmail")
)
IONOS_DE = Preset("IONOS", "imap.ionos.de", "smtp.ionos.de")
IONOS_COM = Preset("IONOS", "imap.ionos.com", "smtp.ionos.com")
STRATO = Preset("STRATO", "imap.strato.de", "smtp.strato.de")
TONLINE = Preset(
    "Telekom (t-online.de)", "secureimap.t-online.de", "securesmtp.t-online.de",
    hint="Telekom: use the separate email password set in the Telekom customer center.",
)  # fmt: skip
POSTEO = Preset("Posteo", "posteo.de", "posteo.de", smtp_port=587, smtp_security=Security.STARTTLS)
MAILBOX_ORG = Preset("mailbox.org", "imap.mailbox.org", "smtp.mailbox.org")
YANDEX = Preset(
    "Yandex Mail", "imap.yandex.com", "smtp.yandex.com", hint=APP_PASSWORD_HINT.format(name="Yandex")
)

OUTLOOK_DOMAINS = (
    *("outlook.com", "hotmail.com", "live.com", "msn.com", "hotmail.co.uk", "hotmail.de", "hotmail.fr"),
    *("outlook.de", "outlook.fr", "live.de", "live.co.uk"),
)
DOMAIN_PRESETS: dict[str, Preset] = {
    **dict.fromkeys(("gmail.com", "googlemail.com"), GOOGLE),
    **dict.fromkeys(OUTLOOK_DOMAINS, OUTLOOK_COM),
    **dict.fromkeys(
        ("yahoo.com", "ymail.com", "yahoo.co.uk", "yahoo.de", "yahoo.fr", "rocketmail.com"), YAHOO
    ),
    **dict.fromkeys(("aol.com", "aol.de"), AOL),
    **dict.fromkeys(("icloud.com", "me.com", "mac.com"), ICLOUD),
    **dict.fromkeys(("gmx.de", "gmx.net", "gmx.at", "gmx.ch"), GMX_DE),
    **dict.fromkeys(("gmx.com", "gmx.us", "gmx.co.uk"), GMX_COM),
    "web.de": WEBDE,
    **dict.fromkeys(("zoho.com", "zohomail.com"), ZOHO),
    "zoho.eu": ZOHO_EU,
    **dict.fromkeys(("fastmail.com", "fastmail.fm"), FASTMAIL),
    **dict.fromkeys(("t-online.de", "magenta.de"), TONLINE),
    "posteo.de": POSTEO,
    "mailbox.org": MAILBOX_ORG,
    **dict.fromkeys(("yandex.com", "yandex.ru"), YANDEX),
}

# Custom domains hosted at a provider, recognised by where their MX points (suffix match).
MX_PRESETS: tuple[tuple[str, Preset], ...] = (
    ("google.com", GOOGLE),
    ("googlemail.com", GOOGLE),
    ("mail.protection.outlook.com", OFFICE365),
    ("mail.protection.office365.us", OFFICE365),
    ("zoho.com", ZOHO),
    ("zoho.eu", ZOHO_EU),
    ("messagingengine.com", FASTMAIL),
    ("ionos.de", IONOS_DE),
    ("kundenserver.de", IONOS_DE),
    ("ionos.com", IONOS_COM),
    ("perfora.net", IONOS_COM),
    ("rzone.de", STRATO),
    ("icloud.com", ICLOUD),
    ("yahoodns.net", YAHOO),
)


@dataclass(frozen=True)
class Discovery:
    """What we found for a domain. `source`: preset | mx | srv | none."""

    domain: str
    source: str
    name: str = ""
    provider: str = Provider.OTHER
    imap_host: str = ""
    imap_port: int | None = None
    imap_security: str = ""
    smtp_host: str = ""
    smtp_port: int | None = None
    smtp_security: str = ""
    hint: str = ""

    @property
    def found(self) -> bool:
        return self.source != "none"

    @property
    def recommends_oauth(self) -> bool:
        return self.provider in (Provider.GOOGLE, Provider.MICROSOFT)

    def server_fields(self) -> dict:
        """The form fields this discovery fills (only those it knows)."""
        fields = {
            k: v for k, v in asdict(self).items() if k.startswith(("imap_", "smtp_")) and v not in ("", None)
        }
        return fields


def _from_preset(domain: str, preset: Preset, source: str) -> Discovery:
    return Discovery(
        domain=domain,
        source=source,
        name=preset.name,
        provider=preset.provider,
        imap_host=preset.imap_host,
        imap_port=preset.imap_port,
        imap_security=preset.imap_security,
        smtp_host=preset.smtp_host,
        smtp_port=preset.smtp_port,
        smtp_security=preset.smtp_security,
        hint=preset.hint,
    )


def domain_of(address: str) -> str:
    return address.strip().rpartition("@")[2].strip().rstrip(".").lower()


def discover(address: str) -> Discovery:
    """Settings for `address` (or a bare domain): preset, MX-hosted preset, SRV records, or nothing."""
    domain = domain_of(address)
    if not domain or "." not in domain or len(domain) > 253:
        return Discovery(domain=domain, source="none")
    preset = DOMAIN_PRESETS.get(domain)
    if preset is not None:
        return _from_preset(domain, preset, "preset")
    resolver = make_resolver()
    if resolver is None:
        return Discovery(domain=domain, source="none")
    preset = _mx_preset(resolver, domain)
    if preset is not None:
        return _from_preset(domain, preset, "mx")
    found = _srv(resolver, domain)
    if found is not None:
        return found
    return Discovery(domain=domain, source="none")


def _query(resolver: dns.resolver.Resolver, name: str, rdtype: str):
    try:
        return list(resolver.resolve(name, rdtype, search=False))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers, dns.exception.Timeout):
        return []
    except dns.exception.DNSException:
        logger.info("DNS lookup %s %s failed", rdtype, name, exc_info=True)
        return []


def _mx_preset(resolver: dns.resolver.Resolver, domain: str) -> Preset | None:
    records = sorted(_query(resolver, domain, "MX"), key=lambda r: r.preference)
    for record in records:
        host = record.exchange.to_text(omit_final_dot=True).lower()
        for suffix, preset in MX_PRESETS:
            if host == suffix or host.endswith("." + suffix):
                return preset
    return None


def _best_srv(resolver: dns.resolver.Resolver, name: str) -> tuple[str, int] | None:
    """RFC 2782 choice (lowest priority, then highest weight); None when absent or "." (not offered)."""
    records = sorted(_query(resolver, name, "SRV"), key=lambda r: (r.priority, -r.weight))
    for record in records:
        target = record.target.to_text(omit_final_dot=True)
        if target in ("", ".") or record.port == 0:
            return None
        return target.lower(), record.port
    return None


def _srv(resolver: dns.resolver.Resolver, domain: str) -> Discovery | None:
    """RFC 6186 (and 8314: implicit TLS preferred): IMAP from _imaps/_imap, SMTP from _submissions/_submission."""
    imap = smtp = None
    imap_security = smtp_security = ""
    if found := _best_srv(resolver, f"_imaps._tcp.{domain}"):
        imap, imap_security = found, Security.SSL
    elif found := _best_srv(resolver, f"_imap._tcp.{domain}"):
        imap, imap_security = found, Security.STARTTLS
    if found := _best_srv(resolver, f"_submissions._tcp.{domain}"):
        smtp, smtp_security = found, Security.SSL
    elif found := _best_srv(resolver, f"_submission._tcp.{domain}"):
        smtp, smtp_security = found, Security.STARTTLS
    if imap is None and smtp is None:
        return None
    return Discovery(
        domain=domain,
        source="srv",
        name=f"{domain} (DNS SRV records)",
        imap_host=imap[0] if imap else "",
        imap_port=imap[1] if imap else None,
        imap_security=imap_security,
        smtp_host=smtp[0] if smtp else "",
        smtp_port=smtp[1] if smtp else None,
        smtp_security=smtp_security,
    )
