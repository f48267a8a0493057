"""Password reset by email (with the lockout lifted) and password change from the profile."""

import re

from django.conf import settings
from django.core import mail
from django.urls import reverse

from accounts.access import tenant_reverse
from tests.accounts.conftest import signed_in
from tests.conftest import PASSWORD

NEW = "a-brand-new-passphrase"


def reset_link_for(client, email: str) -> str:
    response = client.post(reverse("password_reset"), {"email": email})
    assert response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    link = re.search(r"https?://\S+/accounts/reset/\S+/", mail.outbox[0].body)
    assert link, mail.outbox[0].body
    assert link.group(0).startswith(settings.SITE_URL)
    return link.group(0).removeprefix(settings.SITE_URL)


def test_password_reset_round_trip(client, owner):
    link = reset_link_for(client, "OLIVIA@ACME.TEST")
    assert mail.outbox[0].to == [owner.email]
    assert mail.outbox[0].subject == "Reset your helpdesk password"
    form_page = client.get(link, follow=True)
    assert "Choose a new password" in form_page.content.decode()
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(set_url, {"new_password1": NEW, "new_password2": NEW})
    assert done["Location"] == reverse("password_reset_complete")
    assert "Your password was changed" in client.get(done["Location"]).content.decode()
    owner.refresh_from_db()
    assert owner.check_password(NEW)
    sign_in = client.post(reverse("login"), {"username": owner.email, "password": NEW})
    assert sign_in.status_code == 302


def test_reset_link_works_once(client, owner):
    link = reset_link_for(client, owner.email)
    set_url = client.get(link, follow=True).redirect_chain[-1][0]
    client.post(set_url, {"new_password1": NEW, "new_password2": NEW})
    again = client.get(link, follow=True)
    assert "This reset link can't be used" in again.content.decode()


def test_unknown_address_gets_the_same_answer_and_no_email(client, db):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response["Location"] == reverse("password_reset_done")
    assert mail.outbox == []


def test_reset_lifts_the_sign_in_lockout(client, owner):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": owner.email, "password": "wrong-one"})
    assert client.post(reverse("login"), {"username": owner.email, "password": PASSWORD}).status_code == 429
    link = reset_link_for(client, owner.email)
    set_url = client.get(link, follow=True).redirect_chain[-1][0]
    client.post(set_url, {"new_password1": NEW, "new_password2": NEW})
    assert client.post(reverse("login"), {"username": owner.email, "password": NEW}).status_code == 302


def test_password_reset_pages_render(client, db):
    assert "Send reset link" in client.get(reverse("password_reset")).content.decode()
    assert "Check your email" in client.get(reverse("password_reset_done")).content.decode()
    assert "Sign in" in client.get(reverse("password_reset_complete")).content.decode()


def test_password_change_keeps_the_user_signed_in(tenant, owner):
    client = signed_in(owner)
    url = tenant_reverse(tenant, "accounts:password_change")
    assert client.get(url).status_code == 200
    response = client.post(
        url, {"old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW}, follow=True
    )
    assert response.redirect_chain[-1][0] == tenant_reverse(tenant, "accounts:profile")
    assert "Password changed." in response.content.decode()
    owner.refresh_from_db()
    assert owner.check_password(NEW)
    assert client.get(tenant_reverse(tenant, "tickets:inbox")).status_code == 200


def test_password_change_refuses_a_wrong_old_password(tenant, owner):
    client = signed_in(owner)
    response = client.post(
        tenant_reverse(tenant, "accounts:password_change"),
        {"old_password": "wrong", "new_password1": NEW, "new_password2": NEW},
    )
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)
