"""Autodiscovery: provider presets, then the domain's MX and RFC 6186 SRV records through the rig's dnsmasq."""

import json

import pytest

from accounts.access import tenant_reverse
from mailboxes.autodiscover import discover

pytestmark = pytest.mark.django_db


def test_known_provider_preset_needs_no_dns(settings):
    settings.DNS_RESOLVER_NAMESERVERS = ["192.0.2.1"]  # unreachable: a preset must not touch DNS
    found = discover("someone@gmail.com")
    assert (found.source, found.provider) == ("preset", "google")
    assert (found.imap_host, found.imap_port, found.imap_security) == ("imap.gmail.com", 993, "ssl")
    assert (found.smtp_host, found.smtp_port, found.smtp_security) == ("smtp.gmail.com", 465, "ssl")
    assert "app password" in found.hint


@pytest.mark.parametrize(
    ("address", "name", "imap_host", "smtp"),
    [("a@gmx.de", "GMX", "imap.gmx.net", ("mail.gmx.net", 587, "starttls")),
     ("a@web.de", "WEB.DE", "imap.web.de", ("smtp.web.de", 587, "starttls")),
     ("a@yahoo.com", "Yahoo Mail", "imap.mail.yahoo.com", ("smtp.mail.yahoo.com", 465, "ssl")),
     ("a@icloud.com", "iCloud Mail", "imap.mail.me.com", ("smtp.mail.me.com", 587, "starttls")),
     ("a@hotmail.com", "Outlook.com / Hotmail", "outlook.office365.com", ("smtp-mail.outlook.com", 587, "starttls")),
     ("a@zoho.com", "Zoho Mail", "imap.zoho.com", ("smtp.zoho.com", 465, "ssl")),
     ("a@fastmail.com", "Fastmail", "imap.fastmail.com", ("smtp.fastmail.com", 465, "ssl"))],
)  # fmt: skip
def test_presets(address, name, imap_host, smtp):
    found = discover(address)
    assert (found.name, found.imap_host) == (name, imap_host)
    assert (found.smtp_host, found.smtp_port, found.smtp_security) == smtp


def test_google_mx_selects_the_google_preset(dns):
    found = discover("help@gtenant.test")
    assert (found.source, found.provider, found.imap_host) == ("mx", "google", "imap.gmail.com")
    assert found.recommends_oauth


def test_microsoft_365_mx_selects_the_office365_preset(dns):
    found = discover("help@m365tenant.test")
    assert (found.source, found.provider) == ("mx", "microsoft")
    assert (found.imap_host, found.smtp_host, found.smtp_port, found.smtp_security) == (
        "outlook.office365.com", "smtp.office365.com", 587, "starttls",
    )  # fmt: skip


def test_srv_records_fill_hosts_and_ports_preferring_implicit_tls(dns):
    found = discover("help@example.test")
    assert found.source == "srv"
    assert (found.imap_host, found.imap_port, found.imap_security) == ("imap.example.test", 993, "ssl")
    assert (found.smtp_host, found.smtp_port, found.smtp_security) == ("smtp.example.test", 465, "ssl")


def test_srv_without_implicit_tls_falls_back_to_starttls(dns):
    with dns.with_records(
        ["srv-host=_imap._tcp.plainsrv.test,mx.plainsrv.test,143,0,1",
         "srv-host=_submission._tcp.plainsrv.test,mx.plainsrv.test,587,0,1",
         "srv-host=_imaps._tcp.plainsrv.test,.,0"]
    ):  # fmt: skip
        found = discover("a@plainsrv.test")
    assert (found.imap_host, found.imap_port, found.imap_security) == ("mx.plainsrv.test", 143, "starttls")
    assert (found.smtp_port, found.smtp_security) == (587, "starttls")


def test_srv_only_domain(dns):
    found = discover("a@srvonly.test")
    assert (found.imap_host, found.imap_port, found.smtp_port) == ("mail.srvonly.test", 993, 465)


def test_unknown_domain_finds_nothing(dns):
    found = discover("a@unknown-domain.test")
    assert not found.found


def test_autodiscover_endpoint_prefills_the_server_fields(as_admin, tenant, dns):
    response = as_admin.get(tenant_reverse(tenant, "mailboxes:autodiscover"), {"email": "help@example.test"})
    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="imap_host" value="imap.example.test"' in page
    assert 'name="smtp_port" value="465"' in page
    assert "Found in the domain" in page


def test_autodiscover_keeps_what_the_admin_typed(as_admin, tenant, dns):
    url = tenant_reverse(tenant, "mailboxes:autodiscover")
    page = as_admin.get(url, {"email": "help@example.test", "imap_host": "my.own.host"}).content.decode()
    assert 'name="imap_host" value="my.own.host"' in page
    assert 'name="smtp_host" value="smtp.example.test"' in page
    # A guess (not typed by the admin) is replaced when the address changes.
    previous = json.dumps({"imap_host": "imap.example.test", "imap_port": 993})
    page = as_admin.get(
        url,
        {
            "email": "help@gmail.com",
            "imap_host": "imap.example.test",
            "imap_port": "993",
            "discovered": previous,
        },
    ).content.decode()
    assert 'name="imap_host" value="imap.gmail.com"' in page
    assert "Connect with Google instead" in page


def test_unknown_domain_leaves_the_form_for_manual_entry(as_admin, tenant, dns):
    response = as_admin.get(
        tenant_reverse(tenant, "mailboxes:autodiscover"), {"email": "me@unknown-domain.test"}
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "No settings found for unknown-domain.test" in page
    assert "hx-swap-oob" not in page  # what the admin typed in the server fields stays untouched
    page = as_admin.get(tenant_reverse(tenant, "mailboxes:manual"), {"email": "me@unknown-domain.test"})
    assert page.status_code == 200
