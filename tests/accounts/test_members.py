"""Members page: role changes and removal, with the owner rules of accounts/members.py."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts import members
from accounts.access import tenant_reverse
from accounts.models import Membership, Role
from tests.accounts.conftest import signed_in
from tests.conftest import make_member


def membership_of(user, tenant) -> Membership:
    return Membership.objects.get(user=user, tenant=tenant)


def role_url(tenant, user):
    return tenant_reverse(tenant, "accounts:member_role", membership_of(user, tenant).pk)


def remove_url(tenant, user):
    return tenant_reverse(tenant, "accounts:member_remove", membership_of(user, tenant).pk)


def test_members_page_lists_members_marks_you_and_pending_invitations(
    tenant, owner, admin, agent, django_assert_max_num_queries
):
    for i in range(10):  # the query count must not grow with the team
        make_member(tenant, f"member{i}@acme.test", Role.AGENT)
    client = signed_in(admin)
    client.post(tenant_reverse(tenant, "accounts:members"), {"email": "new@acme.test", "role": Role.AGENT})
    with django_assert_max_num_queries(8):
        response = client.get(tenant_reverse(tenant, "accounts:members"))
    assert response.status_code == 200
    html = response.content.decode()
    for user in (owner, admin, agent):
        assert user.email in html
    assert html.count(">you</span>") == 1
    assert "new@acme.test" in html
    assert "Withdraw" in html
    assert "data-confirm=" in html


def test_only_owners_see_the_owner_role_in_the_role_select(tenant, owner, admin, agent):
    as_owner = signed_in(owner).get(tenant_reverse(tenant, "accounts:members")).content.decode()
    as_admin = signed_in(admin).get(tenant_reverse(tenant, "accounts:members")).content.decode()
    assert '<option value="owner"' in as_owner
    assert '<option value="owner"' not in as_admin


def test_admin_changes_an_agents_role(tenant, owner, admin, agent):
    response = signed_in(admin).post(role_url(tenant, agent), {"role": Role.LIGHT_AGENT}, follow=True)
    assert membership_of(agent, tenant).role == Role.LIGHT_AGENT
    assert "Agnes Agent is now light agent." in response.content.decode()


def test_admin_cannot_make_someone_owner(tenant, owner, admin, agent):
    response = signed_in(admin).post(role_url(tenant, agent), {"role": Role.OWNER})
    assert response.status_code == 403
    assert membership_of(agent, tenant).role == Role.AGENT


def test_admin_cannot_demote_or_remove_an_owner(tenant, owner, admin):
    client = signed_in(admin)
    assert client.post(role_url(tenant, owner), {"role": Role.AGENT}).status_code == 403
    assert client.post(remove_url(tenant, owner)).status_code == 403
    assert membership_of(owner, tenant).role == Role.OWNER


def test_owner_grants_owner_and_then_one_owner_may_step_down(tenant, owner, admin):
    client = signed_in(owner)
    client.post(role_url(tenant, admin), {"role": Role.OWNER})
    assert membership_of(admin, tenant).role == Role.OWNER
    client.post(role_url(tenant, owner), {"role": Role.ADMIN})
    assert membership_of(owner, tenant).role == Role.ADMIN


def test_last_owner_cannot_demote_themselves(tenant, owner, admin):
    response = signed_in(owner).post(role_url(tenant, owner), {"role": Role.ADMIN}, follow=True)
    assert membership_of(owner, tenant).role == Role.OWNER
    assert "A workspace needs at least one owner" in response.content.decode()


def test_last_owner_cannot_be_removed(tenant, owner, admin):
    response = signed_in(owner).post(remove_url(tenant, owner), follow=True)
    assert Membership.objects.filter(user=owner, tenant=tenant).exists()
    assert "A workspace needs at least one owner" in response.content.decode()


def test_last_owner_row_has_no_role_select_or_remove_button(tenant, owner):
    html = signed_in(owner).get(tenant_reverse(tenant, "accounts:members")).content.decode()
    assert "only owner" in html
    assert role_url(tenant, owner) not in html
    assert remove_url(tenant, owner) not in html


def test_owner_removes_another_owner(tenant, owner):
    second = make_member(tenant, "sam@acme.test", Role.OWNER)
    signed_in(owner).post(remove_url(tenant, second))
    assert not Membership.objects.filter(user=second, tenant=tenant).exists()


def test_admin_removes_an_agent(tenant, owner, admin, agent):
    response = signed_in(admin).post(remove_url(tenant, agent), follow=True)
    assert not Membership.objects.filter(user=agent, tenant=tenant).exists()
    assert "Agnes Agent was removed from Acme Support." in response.content.decode()


def test_admin_leaving_the_workspace_lands_on_the_workspace_picker(tenant, owner, admin):
    client = signed_in(admin)
    response = client.post(remove_url(tenant, admin))
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get(tenant_reverse(tenant, "tickets:inbox")).status_code == 404


def test_member_of_another_tenant_cannot_be_changed_through_this_tenant(
    tenant, admin, outsider, other_tenant
):
    client = signed_in(admin)
    foreign = membership_of(outsider, other_tenant)
    assert (
        client.post(tenant_reverse(tenant, "accounts:member_role", foreign.pk), {"role": "agent"}).status_code
        == 404
    )
    assert client.post(tenant_reverse(tenant, "accounts:member_remove", foreign.pk)).status_code == 404
    assert membership_of(outsider, other_tenant).role == Role.ADMIN


def test_unknown_role_is_refused_without_a_change(tenant, owner, agent):
    response = signed_in(owner).post(role_url(tenant, agent), {"role": "emperor"}, follow=True)
    assert membership_of(agent, tenant).role == Role.AGENT
    assert "Choose one of the listed roles." in response.content.decode()


# --- the rules themselves, without HTTP -----------------------------------------------------------------


def test_change_role_rules(tenant, owner, admin, agent):
    as_owner, as_admin, as_agent = (membership_of(u, tenant) for u in (owner, admin, agent))
    with pytest.raises(PermissionDenied):
        members.change_role(as_agent, as_admin, Role.AGENT)
    with pytest.raises(PermissionDenied):
        members.change_role(as_admin, as_agent, Role.OWNER)
    with pytest.raises(ValidationError):
        members.change_role(as_owner, as_owner, Role.AGENT)
    assert members.change_role(as_owner, as_agent, Role.ADMIN).role == Role.ADMIN


def test_role_choices_and_manage_rights(tenant, owner, admin):
    as_owner, as_admin = membership_of(owner, tenant), membership_of(admin, tenant)
    assert Role.OWNER in dict(members.role_choices_for(as_owner))
    assert Role.OWNER not in dict(members.role_choices_for(as_admin))
    assert members.may_manage(as_owner, as_admin)
    assert not members.may_manage(as_admin, as_owner)
