"""Sign-in by email, sign-out, and the django-axes lockout after repeated failures."""

import pytest
from django.conf import settings
from django.urls import reverse

from accounts.access import tenant_reverse
from tests.accounts.conftest import signed_in
from tests.conftest import PASSWORD

WRONG = "not-the-password"


def sign_in(client, email, password, **extra):
    return client.post(reverse("login"), {"username": email, "password": password, **extra})


def test_sign_in_ignores_the_case_of_the_email(client, tenant, owner):
    response = sign_in(client, "  OLIVIA@Acme.TEST ", PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert client.get(reverse("home"))["Location"] == tenant_reverse(tenant, "tickets:inbox")


def test_wrong_password_is_refused_in_plain_words(client, owner):
    response = sign_in(client, owner.email, WRONG)
    assert response.status_code == 200
    assert "That email and password do not match an account." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_sign_in_returns_to_the_page_asked_for(client, tenant, owner):
    inbox = tenant_reverse(tenant, "accounts:profile")
    redirect = client.get(inbox)
    assert redirect["Location"] == f"{reverse('login')}?next={inbox}"
    response = sign_in(client, owner.email, PASSWORD, next=inbox)
    assert response["Location"] == inbox


def test_sign_in_does_not_follow_a_foreign_next_url(client, owner):
    response = sign_in(client, owner.email, PASSWORD, next="https://evil.example/")
    assert response["Location"] == reverse("home")


def test_sign_out_is_post_only(tenant, owner):
    client = signed_in(owner)
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert client.get(tenant_reverse(tenant, "tickets:inbox")).status_code == 302


def test_login_page_renders_the_form(client, db):
    html = client.get(reverse("login")).content.decode()
    assert 'name="username"' in html
    assert 'type="email"' in html
    assert reverse("password_reset") in html
    assert reverse("signup") in html


# --- django-axes -------------------------------------------------------------------------------------------


def fail_until_limit(client, email: str) -> None:
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        response = sign_in(client, email, WRONG)
        assert response.status_code == 200, f"attempt {attempt + 1} should only be refused"


def test_lockout_page_after_too_many_failures(client, owner):
    assert settings.AXES_FAILURE_LIMIT == 5
    fail_until_limit(client, owner.email)
    locked = sign_in(client, owner.email, WRONG)  # the fifth failure reaches the limit
    assert locked.status_code == 429
    html = locked.content.decode()
    assert "Too many failed sign-in attempts" in html
    assert "Try again in 15 minutes or reset your password" in html
    assert reverse("password_reset") in html
    sixth = sign_in(client, owner.email, WRONG)
    assert sixth.status_code == 429
    assert "Too many failed sign-in attempts" in sixth.content.decode()


def test_correct_password_is_refused_while_locked(client, owner):
    fail_until_limit(client, owner.email)
    sign_in(client, owner.email, WRONG)
    response = sign_in(client, owner.email, PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_changing_the_case_of_the_email_does_not_get_more_guesses(client, owner):
    variants = [
        "olivia@acme.test",
        "Olivia@acme.test",
        "OLIVIA@acme.test",
        "olivia@ACME.test",
        "OLIVIA@ACME.test",
    ]
    for variant in variants[: settings.AXES_FAILURE_LIMIT]:
        sign_in(client, variant, WRONG)
    response = sign_in(client, "OLIVIA@ACME.TEST", PASSWORD)
    assert response.status_code == 429


def test_lockout_is_per_address_so_colleagues_can_still_sign_in(client, owner, admin):
    fail_until_limit(client, owner.email)
    sign_in(client, owner.email, WRONG)
    assert sign_in(client, admin.email, PASSWORD).status_code == 302


def test_successful_sign_in_resets_the_failure_count(client, owner):
    fail_until_limit(client, owner.email)
    assert sign_in(client, owner.email, PASSWORD).status_code == 302
    client.post(reverse("logout"))
    fail_until_limit(client, owner.email)
    assert sign_in(client, owner.email, PASSWORD).status_code == 302


@pytest.mark.parametrize("path", ["/", "/accounts/login/"])
def test_signed_in_user_is_not_shown_the_login_form(path, tenant, owner):
    response = signed_in(owner).get(path)
    assert response.status_code == 302
