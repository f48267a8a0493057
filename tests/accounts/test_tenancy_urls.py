"""Every URL of the tenant area, found by walking the URLconf, refuses outsiders and anonymous visitors.

New views are covered without touching this file: anything routed under `<slug:tenant_slug>/` is walked.
"""

import re
from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RoutePattern

from tests.accounts.conftest import signed_in

# A sample value for each path converter; a new converter must get one here (the walk fails until it has).
SAMPLES = {
    "int": "1",
    "str": "sample",
    "slug": "sample",
    "path": "sample/path",
    "uuid": "00000000-0000-4000-8000-000000000001",
}
CONVERTER = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>")
# Fewer tenant URLs than this means the walk is broken, not that the app shrank.
MIN_TENANT_PATTERNS = 8
MIN_ADMIN_PATTERNS = 5


@dataclass(frozen=True)
class TenantUrl:
    route: str  # e.g. "<slug:tenant_slug>/settings/members/<int:membership_id>/role/"
    name: str
    callback: object

    def url(self, tenant_slug: str) -> str:
        def fill(match: re.Match) -> str:
            if match["name"] == "tenant_slug":
                return tenant_slug
            conv = match["conv"] or "str"
            if conv not in SAMPLES:
                raise AssertionError(
                    f"{self.route}: add a sample value for the <{conv}:...> converter to SAMPLES"
                )
            return SAMPLES[conv]

        return "/" + CONVERTER.sub(fill, self.route)

    def __str__(self) -> str:
        return self.name or self.route


def _walk(patterns, prefix: str = "", namespace: str = ""):
    for p in patterns:
        if not isinstance(p.pattern, RoutePattern):
            raise AssertionError(
                f"{prefix}{p.pattern}: use path(), not re_path(), so this walk can fill the URL"
            )
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from _walk(p.url_patterns, route, ns)
        elif isinstance(p, URLPattern):
            yield TenantUrl(route=route, name=f"{namespace}{p.name or ''}", callback=p.callback)


def tenant_urls() -> list[TenantUrl]:
    return [u for u in _walk(get_resolver().url_patterns) if "<slug:tenant_slug>" in u.route]


def admin_urls() -> list[TenantUrl]:
    return [u for u in tenant_urls() if getattr(u.callback, "required_role", None) == "admin"]


TENANT_URLS = tenant_urls()
ADMIN_URLS = admin_urls()


def test_the_walk_finds_the_tenant_area():
    assert len(TENANT_URLS) > MIN_TENANT_PATTERNS, [str(u) for u in TENANT_URLS]
    names = {u.name for u in TENANT_URLS}
    assert {"tickets:inbox", "accounts:members", "accounts:profile", "mailboxes:list"} <= names


def test_the_walk_finds_the_admin_pages():
    assert len(ADMIN_URLS) >= MIN_ADMIN_PATTERNS, [str(u) for u in ADMIN_URLS]
    assert "accounts:members" in {u.name for u in ADMIN_URLS}


@pytest.mark.parametrize("tenant_url", TENANT_URLS, ids=str)
def test_every_tenant_view_declares_who_may_use_it(tenant_url):
    """A view without member_required/admin_required would rely on the middleware alone; say it explicitly."""
    assert getattr(tenant_url.callback, "required_role", None) in ("member", "admin"), (
        f"{tenant_url}: wrap the view with member_required or admin_required (accounts.access)"
    )


@pytest.mark.parametrize("tenant_url", TENANT_URLS, ids=str)
def test_outsider_gets_404_on_every_tenant_url(tenant_url, tenant, owner, outsider):
    client = signed_in(outsider)
    url = tenant_url.url(tenant.slug)
    assert client.get(url).status_code == 404, url
    assert client.post(url).status_code == 404, url


@pytest.mark.parametrize("tenant_url", TENANT_URLS, ids=str)
def test_unknown_tenant_gives_404_like_a_foreign_one(tenant_url, outsider):
    client = signed_in(outsider)
    url = tenant_url.url("no-such-tenant")
    assert client.get(url).status_code == 404, url
    assert client.post(url).status_code == 404, url


@pytest.mark.parametrize("tenant_url", TENANT_URLS, ids=str)
def test_anonymous_visitor_is_sent_to_login_on_every_tenant_url(tenant_url, client, tenant):
    url = tenant_url.url(tenant.slug)
    login = reverse("login")
    for response in (client.get(url), client.post(url)):
        assert response.status_code == 302, url
        assert response["Location"].startswith(f"{login}?next="), response["Location"]


@pytest.mark.parametrize("tenant_url", ADMIN_URLS, ids=str)
@pytest.mark.parametrize("role_fixture", ["agent", "light_agent"])
def test_agents_get_403_on_every_admin_url(tenant_url, role_fixture, request, tenant):
    client = signed_in(request.getfixturevalue(role_fixture))
    url = tenant_url.url(tenant.slug)
    statuses = {"GET": client.get(url).status_code, "POST": client.post(url).status_code}
    # 405 is fine for the method a view does not take (require_POST/require_GET answer before the role check),
    # but the method it does take must be refused with 403.
    assert 403 in statuses.values(), (url, statuses)
    assert set(statuses.values()) <= {403, 405}, (url, statuses)


@pytest.mark.parametrize("tenant_url", ADMIN_URLS, ids=str)
def test_admin_pages_open_for_an_admin(tenant_url, tenant, admin):
    """The 403s above come from the role check, not from a page that is broken for everyone."""
    client = signed_in(admin)
    url = tenant_url.url(tenant.slug)
    statuses = {"GET": client.get(url).status_code, "POST": client.post(url).status_code}
    assert not {403, 500} & set(statuses.values()), (url, statuses)
