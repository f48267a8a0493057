"""Smoke tests of the test rig: one per server, each with a negative check, so a broken rig fails loudly here
instead of as a confusing failure in some feature test."""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
import uuid
from email.message import EmailMessage

import jwt
import pytest
import requests
from imapclient.exceptions import LoginError

from tests.rig import database, deps
from tests.rig.dns import DnsServer
from tests.rig.dovecot import Dovecot
from tests.rig.oauth import OAuthFlowError, OAuthServer
from tests.rig.postfix import Postfix
from tests.rig.s3 import S3Server
from tests.rig.smtp import SmtpServer


def _message(sender: str, recipient: str, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, recipient, subject
    msg["Message-ID"] = f"<{uuid.uuid4()}@rig.test>"
    msg.set_content("Hello from the rig smoke tests.\n")
    return msg


def _xoauth2(user: str, token: str) -> str:
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


# --- PostgreSQL / Redis (resolved by tests.rig.database before Django loaded its settings) -----------------


@pytest.mark.django_db
def test_postgres_is_what_django_uses() -> None:
    if "DATABASE_URL" not in os.environ:
        deps.unavailable("postgres", "no DATABASE_URL and no PostgreSQL to start", ["postgresql"])
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("select current_setting('server_version_num')::int, current_database()")
        version, name = cursor.fetchone()
    assert connection.vendor == "postgresql"
    assert version >= 130000
    assert name.startswith("test_")  # pytest-django's throwaway database, never the real one
    resolved = database.resolved["DATABASE_URL"]
    assert f":{connection.settings_dict['PORT']}/" in resolved.url


def test_redis_answers() -> None:
    if "REDIS_URL" not in os.environ:
        deps.unavailable("redis", "no REDIS_URL and no redis-server to start", ["redis-server"])
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=2)
    key = f"rig-smoke-{uuid.uuid4()}"
    assert client.ping() is True
    client.set(key, b"value", ex=10)
    assert client.get(key) == b"value"
    client.delete(key)


# --- Dovecot ------------------------------------------------------------------------------------------------


def test_imap_password_login_and_mailbox_roundtrip(dovecot: Dovecot) -> None:
    raw = _message("customer@customer.test", "alice@example.test", "rig imap roundtrip").as_bytes()
    uid = dovecot.append("alice@example.test", raw, folder="Rig")
    assert uid is not None
    assert any(b"rig imap roundtrip" in m for m in dovecot.fetch_all("alice@example.test", "Rig"))

    for security in ("ssl", "starttls"):
        with dovecot.imap("alice@example.test", security=security) as client:
            special = {flag for flags, _, _ in client.list_folders() for flag in flags}
            assert {rb"\Sent", rb"\Trash", rb"\Drafts", rb"\Archive", rb"\Junk"} <= special

    with pytest.raises(LoginError), dovecot.imap("alice@example.test", "wrong-password"):
        pass


def test_imap_xoauth2_with_a_real_token_and_revocation(dovecot: Dovecot, oauth_server: OAuthServer) -> None:
    token = oauth_server.obtain_tokens("bob@example.test")["access_token"]
    client = dovecot.connect()
    client.oauth2_login("bob@example.test", token)
    client.logout()

    client = dovecot.connect()
    with pytest.raises(LoginError):  # bob's token presented for alice
        client.oauth2_login("alice@example.test", token)

    oauth_server.revoke_all("bob@example.test")
    client = dovecot.connect()
    with pytest.raises(LoginError):
        client.oauth2_login("bob@example.test", token)


# --- aiosmtpd -----------------------------------------------------------------------------------------------


def test_smtp_auth_send_and_injected_failures(smtp: SmtpServer) -> None:
    ctx = ssl.create_default_context(cafile=smtp.ca_path)
    with smtplib.SMTP(smtp.host, smtp.starttls_port, timeout=10) as client:
        client.starttls(context=ctx)
        client.login("alice@example.test", "alicepw")
        client.send_message(_message("alice@example.test", "someone@customer.test", "rig smtp"))
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.send_message(_message("alice@example.test", "reject@customer.test", "rig reject"))
        assert refused.value.recipients["reject@customer.test"][0] == 550
        smtp.fail_next(550, "5.7.1 Policy says no", stage="data")
        with pytest.raises(smtplib.SMTPDataError) as data_error:
            client.send_message(_message("alice@example.test", "someone@customer.test", "rig injected"))
        assert (data_error.value.smtp_code, data_error.value.smtp_error) == (550, b"5.7.1 Policy says no")

    [(mail_from, rcpt_tos, data)] = smtp.messages
    assert (mail_from, rcpt_tos) == ("alice@example.test", ("someone@customer.test",))
    assert b"Subject: rig smtp" in data
    assert smtp.messages[0].auth_user == "alice@example.test"

    with smtplib.SMTP(smtp.host, smtp.starttls_port, timeout=10) as client:
        client.starttls(context=ctx)
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("alice@example.test", "wrong")


def test_refused_and_silent_ports(refused_port: int, silent_port: int) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", refused_port), timeout=2)
    conn = socket.create_connection(("127.0.0.1", silent_port), timeout=0.3)
    with conn, pytest.raises(TimeoutError):  # connected, but no greeting ever comes
        conn.recv(1)


# --- Postfix ------------------------------------------------------------------------------------------------


def test_postfix_submission_is_delivered_to_dovecot(postfix: Postfix, dovecot: Dovecot) -> None:
    subject = f"rig postfix {uuid.uuid4()}"
    ctx = ssl.create_default_context(cafile=str(postfix.ca_path))
    with smtplib.SMTP(postfix.host, postfix.submission_port, timeout=10) as client:
        client.starttls(context=ctx)
        client.login("alice@example.test", "alicepw")
        client.send_message(_message("alice@example.test", "support@acme.test", subject))
    [raw] = dovecot.wait_for_messages("support@acme.test", match=lambda m: subject.encode() in m)
    assert b"Received: from" in raw  # it really went through Postfix

    relay = _message("spam@outside.test", "victim@elsewhere.test", "relay attempt")
    with (  # the MX port without AUTH must not relay
        smtplib.SMTP(postfix.host, postfix.smtp_port, timeout=10) as client,
        pytest.raises(smtplib.SMTPRecipientsRefused),
    ):
        client.send_message(relay)


# --- SeaweedFS ----------------------------------------------------------------------------------------------


def test_s3_put_get_and_wrong_secret(s3_server: S3Server) -> None:
    from botocore.exceptions import ClientError

    client = s3_server.client()
    bucket = s3_server.new_bucket()
    client.put_object(Bucket=bucket, Key="a/b.txt", Body=b"attachment", ContentType="text/plain")
    assert client.get_object(Bucket=bucket, Key="a/b.txt")["Body"].read() == b"attachment"

    with pytest.raises(ClientError) as denied:
        s3_server.client(aws_secret_access_key="not-the-secret").get_object(Bucket=bucket, Key="a/b.txt")
    assert denied.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


# --- dnsmasq ------------------------------------------------------------------------------------------------


def test_dns_mx_srv_and_nxdomain(dns_server: DnsServer) -> None:
    import dns.resolver

    resolver = dns_server.resolver()
    mx = sorted((r.preference, r.exchange.to_text()) for r in resolver.resolve("example.test", "MX"))
    assert mx == [(10, "mail.example.test."), (20, "backup-mx.example.test.")]
    [srv] = resolver.resolve("_submissions._tcp.srvonly.test", "SRV")
    assert (srv.port, srv.target.to_text()) == (465, "mail.srvonly.test.")
    assert [a.to_text() for a in resolver.resolve("metadata.test", "A")] == ["169.254.169.254"]
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("unknown-domain.test", "A")

    with dns_server.with_records(["host-record=added.test,127.0.0.9"]):
        assert [a.to_text() for a in resolver.resolve("added.test", "A")] == ["127.0.0.9"]
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("added.test", "A")


# --- OAuth server -------------------------------------------------------------------------------------------


def test_oauth_code_flow_refresh_rotation_and_oidc(oauth_server: OAuthServer) -> None:
    tokens = oauth_server.obtain_tokens(
        "support@acme.test", redirect_uri="http://127.0.0.1:49152/oauth/callback/"
    )
    assert {"access_token", "refresh_token", "id_token"} <= set(tokens)

    signing_key = jwt.PyJWKClient(oauth_server.jwks_url).get_signing_key_from_jwt(tokens["id_token"])
    claims = jwt.decode(
        tokens["id_token"], signing_key.key, algorithms=["RS256"], audience=oauth_server.client_id
    )
    assert claims["email"] == "support@acme.test"
    assert claims["iss"] == oauth_server.issuer
    userinfo = requests.get(
        oauth_server.userinfo_url, headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10
    ).json()
    assert userinfo["email"] == "support@acme.test"

    refreshed = oauth_server.refresh(tokens["refresh_token"])
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    assert oauth_server.introspect(refreshed["access_token"])["active"] is True
    assert oauth_server.introspect(tokens["access_token"]) == {"active": False}
    with pytest.raises(OAuthFlowError):  # rotated: the old refresh token is dead
        oauth_server.refresh(tokens["refresh_token"])

    oauth_server.expire_access_tokens("support@acme.test")
    assert oauth_server.introspect(refreshed["access_token"]) == {"active": False}
    with pytest.raises(OAuthFlowError):  # wrong password never reaches the consent page
        oauth_server.obtain_tokens("support@acme.test", password="wrong")


# --- Chromium -----------------------------------------------------------------------------------------------


@pytest.mark.browser
def test_chromium_screenshot_of_the_login_page(page, live_server, screenshot) -> None:  # type: ignore[no-untyped-def]
    response = page.goto(f"{live_server.url}/accounts/login/")
    assert response is not None and response.status == 200
    assert page.locator("input[type=password]").count() == 1
    path = screenshot(page, "login")
    assert path.stat().st_size > 1000
