"""Profile and availability."""

from accounts.access import tenant_reverse
from accounts.models import Membership
from tests.accounts.conftest import signed_in


def test_profile_saves_name_phones_and_signature(tenant, agent):
    client = signed_in(agent)
    url = tenant_reverse(tenant, "accounts:profile")
    page = client.get(url).content.decode()
    assert agent.email in page
    assert tenant_reverse(tenant, "accounts:password_change") in page
    response = client.post(
        url,
        {
            "name": "Agnes A.",
            "phone": "+49 30 1234",
            "mobile": "",
            "fax": "",
            "signature": "Cheers,\n{{ agent.name }}",
        },
        follow=True,
    )
    assert "Profile saved." in response.content.decode()
    agent.refresh_from_db()
    assert (agent.name, agent.phone, agent.signature) == (
        "Agnes A.",
        "+49 30 1234",
        "Cheers,\n{{ agent.name }}",
    )


def test_availability_toggles_and_returns_to_the_page(tenant, agent):
    client = signed_in(agent)
    url = tenant_reverse(tenant, "accounts:availability")
    back = tenant_reverse(tenant, "accounts:profile")
    response = client.post(url, {"available": "0", "next": back})
    assert response["Location"] == back
    assert not Membership.objects.get(user=agent, tenant=tenant).is_available
    html = client.get(back).content.decode()
    assert "Set yourself available" in html
    client.post(url, {"available": "1", "next": back})
    assert Membership.objects.get(user=agent, tenant=tenant).is_available


def test_availability_is_per_workspace(tenant, other_tenant, agent):
    Membership.objects.create(tenant=other_tenant, user=agent)
    signed_in(agent).post(tenant_reverse(tenant, "accounts:availability"), {"available": "0"})
    assert not Membership.objects.get(user=agent, tenant=tenant).is_available
    assert Membership.objects.get(user=agent, tenant=other_tenant).is_available


def test_availability_does_not_redirect_off_site(tenant, agent):
    response = signed_in(agent).post(
        tenant_reverse(tenant, "accounts:availability"), {"available": "0", "next": "https://evil.example/"}
    )
    assert response["Location"] == tenant_reverse(tenant, "tickets:inbox")
