"""Sign-up: a new workspace with its owner, landing in the inbox; the workspace picker and switcher."""

from django.urls import reverse

from accounts.access import tenant_reverse
from accounts.models import Membership, Role, Tenant, User
from tests.accounts.conftest import signed_in
from tests.conftest import make_member

GOOD = {
    "workspace_name": "Initech Support",
    "slug": "initech",
    "name": "Peter Gibbons",
    "email": "Peter@Initech.example",
    "password": "tps-reports-are-due",
}


def test_sign_up_creates_workspace_and_owner_and_lands_in_the_inbox_with_a_welcome(client, db):
    response = client.post(reverse("signup"), GOOD, follow=True)
    tenant = Tenant.objects.get(slug="initech")
    assert response.redirect_chain[-1][0] == tenant_reverse(tenant, "tickets:inbox")
    user = User.objects.get(email="peter@initech.example")
    assert user.name == "Peter Gibbons"
    assert user.check_password(GOOD["password"])
    assert Membership.objects.get(user=user, tenant=tenant).role == Role.OWNER
    html = response.content.decode()
    assert "Welcome to Initech Support!" in html
    assert 'class="sidebar"' in html
    assert response.wsgi_request.user == user


def test_sign_up_page_fills_the_address_from_the_name(client, db):
    html = client.get(reverse("signup")).content.decode()
    assert 'data-autofill-slug="id_slug"' in html
    assert 'id="id_slug"' in html
    for name in ("workspace_name", "slug", "name", "email", "password"):
        assert f'name="{name}"' in html


def test_sign_up_lowercases_the_address(client, db):
    client.post(reverse("signup"), {**GOOD, "slug": "IniTech"})
    assert Tenant.objects.filter(slug="initech").exists()


def test_taken_reserved_or_malformed_address_is_refused_next_to_the_field(client, tenant):
    for slug, message in [
        ("acme", "This address is already taken."),
        ("signup", "This address is reserved."),
        ("-bad-", "Use 1 to 40 lowercase letters"),
    ]:
        response = client.post(reverse("signup"), {**GOOD, "slug": slug})
        assert response.status_code == 200
        assert message in response.content.decode(), slug
    assert not User.objects.filter(email="peter@initech.example").exists()


def test_existing_email_is_told_to_sign_in(client, tenant, owner):
    response = client.post(reverse("signup"), {**GOOD, "email": "OLIVIA@acme.test"})
    assert (
        "An account with this email exists. Sign in to create another workspace." in response.content.decode()
    )
    assert not Tenant.objects.filter(slug="initech").exists()


def test_weak_password_is_refused(client, db):
    response = client.post(reverse("signup"), {**GOOD, "password": "initech"})
    assert "This password is too short" in response.content.decode()
    assert not Tenant.objects.exists()


def test_signed_in_user_creates_another_workspace_as_owner(tenant, agent):
    client = signed_in(agent)
    html = client.get(reverse("signup")).content.decode()
    assert 'name="password"' not in html
    response = client.post(reverse("signup"), {"workspace_name": "Side Project", "slug": "side"})
    side = Tenant.objects.get(slug="side")
    assert response["Location"] == tenant_reverse(side, "tickets:inbox")
    assert Membership.objects.get(user=agent, tenant=side).role == Role.OWNER


def test_user_with_several_workspaces_picks_one(tenant, other_tenant, agent):
    make_member_of = Membership.objects.create
    make_member_of(tenant=other_tenant, user=agent, role=Role.ADMIN)
    response = signed_in(agent).get(reverse("home"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Choose a workspace" in html
    assert tenant_reverse(tenant, "tickets:inbox") in html
    assert tenant_reverse(other_tenant, "tickets:inbox") in html
    assert "Create a workspace" in html


def test_home_returns_to_the_last_workspace_used(tenant, other_tenant, agent):
    Membership.objects.create(tenant=other_tenant, user=agent, role=Role.AGENT)
    client = signed_in(agent)
    client.get(tenant_reverse(other_tenant, "tickets:inbox"))
    assert client.get(reverse("home"))["Location"] == tenant_reverse(other_tenant, "tickets:inbox")


def test_user_without_workspace_is_offered_to_create_one(db):
    loner = User.objects.create_user("lone@example.com", "whatever-password")
    html = signed_in(loner).get(reverse("home")).content.decode()
    assert "No workspace yet" in html
    assert reverse("signup") in html


def test_anonymous_home_goes_to_login(client, db):
    assert client.get(reverse("home"))["Location"] == reverse("login")


def test_tenant_switcher_lists_the_users_workspaces(tenant, other_tenant, agent):
    Membership.objects.create(tenant=other_tenant, user=agent, role=Role.LIGHT_AGENT)
    make_member(tenant, "x@acme.test", Role.AGENT)
    html = signed_in(agent).get(tenant_reverse(tenant, "tickets:inbox")).content.decode()
    switcher = html[html.index('class="switcher"') : html.index("</details>")]
    assert "Acme Support" in switcher
    assert "Globex" in switcher
    assert tenant_reverse(other_tenant, "tickets:inbox") in switcher
    assert "Light agent" in switcher
