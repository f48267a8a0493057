"""Fixtures of the ticket tests: a signed-in browser page and a small, realistic inbox."""

import pytest
from django.conf import settings
from django.test import Client


@pytest.fixture
def sign_in(live_server, page):
    """sign_in(user) -> the Playwright page, signed in as `user` on the live server."""

    def sign(user):
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        page.context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}]
        )
        return page

    return sign
