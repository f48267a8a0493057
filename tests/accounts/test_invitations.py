"""Invitations: emailed link with a role, works once, expires, can be withdrawn."""

import re
import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection, connections
from django.urls import reverse
from django.utils import timezone

from accounts import invitations
from accounts.access import tenant_reverse
from accounts.models import Invitation, Membership, Role, User
from tests.accounts.conftest import signed_in
from tests.conftest import PASSWORD, make_member

NEW_PASSWORD = "a-long-and-new-passphrase"


def invite_by_email(client, tenant, email="nina@example.com", role=Role.AGENT) -> str:
    """Invite through the members page; return the path of the link in the email."""
    response = client.post(tenant_reverse(tenant, "accounts:members"), {"email": email, "role": role})
    assert response.status_code == 302, response.content.decode()[:2000]
    body = mail.outbox[-1].body
    link = re.search(r"https?://\S+/invite/\S+/", body)
    assert link, body
    assert link.group(0).startswith(settings.SITE_URL)
    return link.group(0).removeprefix(settings.SITE_URL)


def test_admin_invites_and_the_email_link_creates_an_account_with_the_role(client, tenant, admin):
    path = invite_by_email(signed_in(admin), tenant, "Nina@Example.com", Role.LIGHT_AGENT)
    message = mail.outbox[0]
    assert message.to == ["nina@example.com"]
    assert "Adam Admin invited you to Acme Support" in message.subject
    assert "light agent" in message.body

    page = client.get(path)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Join Acme Support" in html
    assert "Adam Admin" in html
    assert "Light agent" in html

    response = client.post(path, {"name": "Nina New", "password": NEW_PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == tenant_reverse(tenant, "tickets:inbox")
    nina = User.objects.get(email="nina@example.com")
    assert nina.name == "Nina New"
    assert Membership.objects.get(user=nina, tenant=tenant).role == Role.LIGHT_AGENT
    assert response.wsgi_request.user == nina
    assert "Welcome to Acme Support!" in response.content.decode()


def test_invitation_link_works_once(client, tenant, admin):
    path = invite_by_email(signed_in(admin), tenant)
    assert client.post(path, {"name": "Nina", "password": NEW_PASSWORD}).status_code == 302
    second = signed_in(User.objects.get(email="nina@example.com")).post(path)
    assert second.status_code == 410
    assert "already used" in second.content.decode()
    anonymous_again = type(client)().post(path, {"name": "Mallory", "password": NEW_PASSWORD})
    assert anonymous_again.status_code == 410
    assert User.objects.filter(email="nina@example.com").count() == 1


def test_invitation_expires_after_the_configured_days(client, tenant, admin):
    path = invite_by_email(signed_in(admin), tenant)
    invitation = Invitation.objects.get(email="nina@example.com")
    assert invitation.expires_at - invitation.created_at == pytest.approx(
        timedelta(days=settings.INVITATION_MAX_AGE_DAYS), abs=timedelta(seconds=5)
    )
    later = timezone.now() + timedelta(days=settings.INVITATION_MAX_AGE_DAYS, minutes=1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        response = client.get(path)
        refused = client.post(path, {"name": "Nina", "password": NEW_PASSWORD})
    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert "Adam Admin" in response.content.decode()  # who to ask for a new one
    assert refused.status_code == 410
    assert not User.objects.filter(email="nina@example.com").exists()


def test_invitation_still_works_just_before_it_expires(client, tenant, admin):
    path = invite_by_email(signed_in(admin), tenant)
    almost = timezone.now() + timedelta(days=settings.INVITATION_MAX_AGE_DAYS, minutes=-1)
    with mock.patch("django.utils.timezone.now", return_value=almost):
        assert client.get(path).status_code == 200


def test_withdrawn_invitation_stops_working(client, tenant, admin):
    admin_client = signed_in(admin)
    path = invite_by_email(admin_client, tenant)
    invitation = Invitation.objects.get(email="nina@example.com")
    admin_client.post(tenant_reverse(tenant, "accounts:invitation_revoke", invitation.pk))
    response = client.get(path)
    assert response.status_code == 410
    assert "withdrawn" in response.content.decode()


def test_new_invitation_to_the_same_address_replaces_the_old_link(client, tenant, admin):
    admin_client = signed_in(admin)
    first = invite_by_email(admin_client, tenant)
    second = invite_by_email(admin_client, tenant)
    assert client.get(first).status_code == 410
    assert client.get(second).status_code == 200


def test_unknown_link_gives_404_with_advice(client, db):
    response = client.get(reverse("invitation", args=["not-a-real-token"]))
    assert response.status_code == 404
    assert "Copy the whole link" in response.content.decode()


def test_inviting_a_member_again_is_refused_next_to_the_field(tenant, admin, agent):
    response = signed_in(admin).post(
        tenant_reverse(tenant, "accounts:members"), {"email": "AGNES@acme.test", "role": Role.AGENT}
    )
    assert response.status_code == 200
    assert "agnes@acme.test is already a member of Acme Support." in response.content.decode()
    assert mail.outbox == []


def test_failed_invitation_email_leaves_no_invitation_behind(tenant, admin, settings):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2},  # discard port: refused
        }
    }
    response = signed_in(admin).post(
        tenant_reverse(tenant, "accounts:members"), {"email": "nina@example.com", "role": Role.AGENT}
    )
    assert response.status_code == 200
    assert "could not be sent" in response.content.decode()
    assert not Invitation.objects.exists()


def test_signed_in_user_with_the_invited_address_joins_with_one_click(tenant, admin, other_tenant):
    existing = make_member(other_tenant, "nina@example.com", Role.AGENT)
    path = invite_by_email(signed_in(admin), tenant, "nina@example.com", Role.ADMIN)
    client = signed_in(existing)
    page = client.get(path).content.decode()
    assert "Join Acme Support</button>" in page
    assert 'name="password"' not in page
    response = client.post(path)
    assert response.status_code == 302
    assert Membership.objects.get(user=existing, tenant=tenant).role == Role.ADMIN


def test_existing_user_who_is_signed_out_is_sent_to_sign_in_first(client, tenant, admin, other_tenant):
    make_member(other_tenant, "nina@example.com", Role.AGENT)
    path = invite_by_email(signed_in(admin), tenant)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert "next=" in response["Location"]
    # No second account can be made through the link either.
    assert client.post(path, {"name": "Nina", "password": NEW_PASSWORD}).status_code == 302
    assert User.objects.filter(email__iexact="nina@example.com").count() == 1


def test_user_signed_in_as_another_address_is_told_and_cannot_join(tenant, admin, outsider):
    path = invite_by_email(signed_in(admin), tenant, "nina@example.com")
    client = signed_in(outsider)
    page = client.get(path).content.decode()
    assert "This invitation is for nina@example.com." in page
    assert "You are signed in as oscar@globex.test" in page
    assert "Sign out and continue" in page
    response = client.post(path)
    assert response.status_code == 403
    assert not Membership.objects.filter(user=outsider, tenant=tenant).exists()
    assert Invitation.objects.get(email="nina@example.com").is_usable


def test_weak_password_is_refused_next_to_the_field(client, tenant, admin):
    path = invite_by_email(signed_in(admin), tenant)
    response = client.post(path, {"name": "Nina", "password": "short"})
    assert response.status_code == 200
    assert "This password is too short" in response.content.decode()
    assert not User.objects.filter(email="nina@example.com").exists()


def test_owner_role_cannot_be_given_by_invitation(tenant, owner):
    response = signed_in(owner).post(
        tenant_reverse(tenant, "accounts:members"), {"email": "nina@example.com", "role": Role.OWNER}
    )
    assert response.status_code == 200
    assert not Invitation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_acceptance_creates_one_membership(tenant, owner):
    if connection.vendor == "sqlite":
        pytest.skip("needs row locks across connections: runs on PostgreSQL (the rig's database)")
    invitation, token = Invitation.new(
        tenant=tenant, email="nina@example.com", role=Role.AGENT, invited_by=owner
    )
    invitation.save()
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def accept() -> None:
        try:
            barrier.wait()
            invitations.accept_with_new_account(token, name="Nina", password=PASSWORD)
            outcomes.append("joined")
        except invitations.InvitationUnusable as exc:
            outcomes.append(exc.reason)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=accept) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["joined", "used", "used", "used"]
    assert Membership.objects.filter(tenant=tenant, user__email="nina@example.com").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_one_click_joins_create_one_membership(tenant, owner, other_tenant):
    if connection.vendor == "sqlite":
        pytest.skip("needs row locks across connections: runs on PostgreSQL (the rig's database)")
    nina = make_member(other_tenant, "nina@example.com", Role.AGENT)
    invitation, token = Invitation.new(
        tenant=tenant, email="nina@example.com", role=Role.AGENT, invited_by=owner
    )
    invitation.save()
    barrier = threading.Barrier(3)
    outcomes: list[str] = []

    def accept() -> None:
        try:
            barrier.wait()
            invitations.accept(token, nina)
            outcomes.append("joined")
        except invitations.InvitationUnusable as exc:
            outcomes.append(exc.reason)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=accept) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["joined", "used", "used"]
    assert Membership.objects.filter(tenant=tenant, user=nina).count() == 1
