"""In-process SMTP submission server (aiosmtpd) for testing the helpdesk's sender, plus failure injection.

Three listeners share one handler and one captured-message list:

* ``starttls_port``: STARTTLS required before AUTH (like port 587 at Microsoft and Google);
* ``tls_port``: implicit TLS (port 465 style);
* ``plain_port``: no TLS at all, AUTH optional (for "no encryption" configurations).

Failures to provoke, all resettable with ``reset()``:

* magic recipient local parts (any domain): ``tempfail`` 450, ``reject`` 550 5.1.1, ``ratelimit`` 421 (and
  the connection is closed, as a real 421 does), ``full`` 552 5.2.2;
* messages larger than ``max_message_size`` bytes: 552 5.3.4 naming both sizes (also for ``MAIL FROM
  SIZE=``); ``SIZE`` is advertised in EHLO;
* a header ``X-Test-Fail: 452`` or ``X-Test-Fail: 554`` in the message: that code after DATA;
* programmatic: ``fail_next(code, text, stage)``, ``drop_after_data()``, ``rejected_senders``.

XOAUTH2 tokens are introspected at the rig's OAuth server and must belong to the user named in the
XOAUTH2 string, exactly like at Microsoft/Google.

The controllers run in threads of the test process (start-up ~0.05 s each), so tests read captured mail
directly, without a mailbox on disk.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import email
import email.message
import email.policy
import itertools
import json
import logging
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.rig.oauth import OAuthServer
from tests.rig.oauth_server import DEFAULT_USERS, default_password
from tests.rig.ports import LOOPBACK, free_port
from tests.rig.tls import TlsFiles

Stage = Literal["auth", "mail", "rcpt", "data"]
DEFAULT_MAX_MESSAGE_SIZE = 10 * 1024 * 1024

MAGIC_RECIPIENTS = {
    "tempfail": "450 4.2.1 Mailbox temporarily unavailable (test)",
    "reject": "550 5.1.1 User unknown (test)",
    "ratelimit": "421 4.7.0 Too many messages, closing connection (test)",
    "full": "552 5.2.2 Mailbox full (test)",
}
HEADER_FAILURES = {
    "452": "452 4.3.1 Insufficient system storage (test)",
    "554": "554 5.7.1 Message rejected as spam (test)",
}
DEFAULT_TEXTS = {
    4: "4.3.0 Temporary failure (injected by test)",
    5: "5.7.0 Permanent failure (injected by test)",
}


@dataclass(frozen=True)
class CapturedMessage:
    """A message the server accepted. Unpacks as the ``(mail_from, rcpt_tos, data)`` triple."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    auth_user: str | None = None
    port: int = 0
    secure: bool = False  # TLS was active (STARTTLS or implicit)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.mail_from, self.rcpt_tos, self.data))

    @property
    def message(self) -> email.message.EmailMessage:
        """The data parsed with the modern email policy."""
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class SmtpState:
    """Mutable state shared by the listeners' threads (every access holds ``lock``)."""

    users: dict[str, str]
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    messages: list[CapturedMessage] = field(default_factory=list)
    dropped: list[CapturedMessage] = field(default_factory=list)
    injections: dict[str, collections.deque[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.deque)
    )
    drops: int = 0
    rejected_senders: set[str] = field(default_factory=set)
    lock: threading.RLock = field(default_factory=threading.RLock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    def take_injection(self, stage: Stage) -> str | None:
        with self.lock:
            queue = self.injections.get(stage)
            return queue.popleft() if queue else None


def _introspector(oauth: OAuthServer) -> Callable[[str], dict[str, Any]]:
    """A blocking RFC 7662 call (run in an executor thread, so the event loop keeps serving)."""
    credentials = f"{oauth.introspection_client_id}:{oauth.introspection_client_secret}".encode()
    auth_header = "Basic " + base64.b64encode(credentials).decode()

    def introspect(token: str) -> dict[str, Any]:
        request = urllib.request.Request(
            oauth.introspect_url,
            data=urllib.parse.urlencode({"token": token}).encode(),
            headers={"Authorization": auth_header},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    return introspect


def _implicit_tls(server: SMTP) -> bool:
    return server.transport is not None and server.transport.get_extra_info("ssl_object") is not None


class _DropLoginDataNoise(logging.Filter):
    """aiosmtpd 1.4.6 logs a deprecation warning on every successful AUTH (its own code sets
    ``Session.login_data``): noise in every test's captured log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_DropLoginDataNoise())


class _ImplicitTlsSMTP(SMTP):
    """For the implicit-TLS port. aiosmtpd 1.4.6 does not count implicit TLS as TLS, so with
    ``auth_require_tls=True`` AUTH would never be offered there; with ``auth_require_tls=False`` plus
    ``auth_required=True`` it warns on every connection. The whole connection *is* TLS: build the server
    without the contradictory pair, then require AUTH."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "auth_required": False, "auth_require_tls": False})
        self._auth_required = True


class _Controller(Controller):
    def __init__(self, *args: Any, smtp_class: type[SMTP] = SMTP, **kwargs: Any) -> None:
        self._smtp_class = smtp_class
        super().__init__(*args, **kwargs)

    def factory(self) -> SMTP:
        return self._smtp_class(self.handler, **self.SMTP_kwargs)


class RigHandler:
    """aiosmtpd handler: authentication, failure injection and capture."""

    def __init__(self, state: SmtpState, introspect: Callable[[str], dict[str, Any]] | None) -> None:
        self.state = state
        self.introspect = introspect
        self._ids = itertools.count(1)

    # --- authentication -----------------------------------------------------------------------------------
    def authenticator(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """PLAIN and LOGIN against the user table."""
        if isinstance(auth_data, LoginPassword):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            with self.state.lock:
                ok = self.state.users.get(login.lower()) == password
            if ok:
                return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)

    async def handle_AUTH(self, server: SMTP, session: Session, envelope: Envelope, args: list[str]) -> Any:
        return self.state.take_injection("auth") or MISSING

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """``AUTH XOAUTH2 base64("user=" user "\\x01auth=Bearer " token "\\x01\\x01")``.

        On failure answer like Google: a ``334`` challenge with a JSON error, then ``535`` after the client's
        empty line.
        """
        if len(args) < 2:
            blob = await server.challenge_auth("", encode_to_b64=False)
            if blob is MISSING:
                return AuthResult(success=False, handled=False)
        else:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except ValueError:
                return AuthResult(success=False, handled=False, message="501 5.5.2 Cannot decode response")
        user = None
        try:
            parts = dict(p.split("=", 1) for p in blob.decode().split("\x01") if p)
            user, token = parts["user"], parts["auth"].removeprefix("Bearer ")
            if self.introspect is None:
                raise LookupError("no OAuth server to introspect at")
            info = await asyncio.get_running_loop().run_in_executor(None, self.introspect, token)
            ok = bool(info.get("active")) and info.get("username", "").lower() == user.lower()
        except Exception:
            ok = False
        if not ok:
            error = b'{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}'
            await server.challenge_auth(base64.b64encode(error).decode(), encode_to_b64=False)
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=user)

    # --- envelope ---------------------------------------------------------------------------------------------
    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.state.lock:
            size = self.state.max_message_size
        return [responses[0], f"250-SIZE {size}", *responses[1:]]

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        injected = self.state.take_injection("mail")
        if injected:
            return injected
        with self.state.lock:
            rejected = address.lower() in self.state.rejected_senders
            limit = self.state.max_message_size
        if rejected:
            return "550 5.7.1 Sender address rejected (test)"
        for option in mail_options:
            if option.startswith("SIZE=") and option[5:].isdigit() and int(option[5:]) > limit:
                return f"552 5.3.4 Message size {option[5:]} exceeds fixed maximum message size {limit}"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        injected = self.state.take_injection("rcpt")
        if injected:
            return self._maybe_close(server, injected)
        magic = MAGIC_RECIPIENTS.get(address.split("@")[0].lower())
        if magic:
            return self._maybe_close(server, magic)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data: bytes = envelope.original_content or b""
        captured = CapturedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=data,
            auth_user=session.auth_data if isinstance(session.auth_data, str) else None,
            port=server.transport.get_extra_info("sockname")[1] if server.transport else 0,
            secure=session.ssl is not None or _implicit_tls(server),
        )
        with self.state.lock:
            if self.state.drops:
                self.state.drops -= 1
                self.state.dropped.append(captured)
                if server.transport is not None:
                    server.transport.abort()  # no reply at all: the client sees the connection die
                return "451 4.3.0 (never sent: connection dropped)"
            limit = self.state.max_message_size
        injected = self.state.take_injection("data")
        if injected:
            return self._maybe_close(server, injected)
        if len(data) > limit:
            return f"552 5.3.4 Message size {len(data)} exceeds fixed maximum message size {limit}"
        header_block = data.split(b"\r\n\r\n", 1)[0]
        for code, reply in HEADER_FAILURES.items():
            if f"X-Test-Fail: {code}".encode() in header_block:
                return reply
        with self.state.arrived:
            self.state.messages.append(captured)
            self.state.arrived.notify_all()
        return f"250 2.0.0 Ok: queued as RIG{next(self._ids):06d}"

    @staticmethod
    def _maybe_close(server: SMTP, reply: str) -> str:
        """421 means "closing the connection": close it after the reply is written, as real servers do."""
        if reply.startswith("421") and server.transport is not None:
            asyncio.get_running_loop().call_soon(server.transport.close)
        return reply


@dataclass(frozen=True)
class SmtpServer:
    """A running aiosmtpd submission server. ``plain_port`` is 0 when not started."""

    host: str
    starttls_port: int
    tls_port: int
    plain_port: int
    tls: TlsFiles | None
    state: SmtpState = field(repr=False, compare=False)
    controllers: tuple[Controller, ...] = field(repr=False, compare=False)

    @property
    def ca_path(self) -> str | None:
        return str(self.tls.ca_path) if self.tls else None

    @property
    def users(self) -> dict[str, str]:
        return self.state.users

    @property
    def messages(self) -> list[CapturedMessage]:
        """A snapshot of the accepted messages, oldest first."""
        with self.state.lock:
            return list(self.state.messages)

    @property
    def dropped(self) -> list[CapturedMessage]:
        """Messages whose DATA was received and then answered by closing the connection."""
        with self.state.lock:
            return list(self.state.dropped)

    @property
    def rejected_senders(self) -> set[str]:
        """Live set: add a lower-case address to have ``MAIL FROM`` answered 550 5.7.1."""
        return self.state.rejected_senders

    def add_user(self, email: str, password: str | None = None) -> str:
        password = password or default_password(email)
        with self.state.lock:
            self.state.users[email.lower()] = password
        return password

    def fail_next(self, code: int, text: str = "", stage: Stage = "data") -> None:
        """Answer the next command of ``stage`` (auth/mail/rcpt/data) with ``code text`` (once; queue more)."""
        if stage not in ("auth", "mail", "rcpt", "data"):
            raise ValueError(f"unknown stage {stage!r}")
        with self.state.lock:
            self.state.injections[stage].append(f"{code} {text or DEFAULT_TEXTS[code // 100]}")

    def drop_after_data(self, times: int = 1) -> None:
        """Receive the next message's data, then close the connection without replying."""
        with self.state.lock:
            self.state.drops += times

    def set_max_message_size(self, size: int) -> None:
        with self.state.lock:
            self.state.max_message_size = size

    def clear(self) -> None:
        """Forget captured (and dropped) messages."""
        with self.state.lock:
            self.state.messages.clear()
            self.state.dropped.clear()

    def reset(self) -> None:
        """Back to a fresh server: no messages, no pending failures, default size limit. Users are kept."""
        with self.state.lock:
            self.clear()
            self.state.injections.clear()
            self.state.drops = 0
            self.state.rejected_senders.clear()
            self.state.max_message_size = DEFAULT_MAX_MESSAGE_SIZE

    def wait_for_messages(self, count: int = 1, timeout: float = 10) -> list[CapturedMessage]:
        """Block until ``count`` messages were accepted (for mail sent by another thread or process)."""
        deadline = time.monotonic() + timeout
        with self.state.arrived:
            while len(self.state.messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{len(self.state.messages)} of {count} messages after {timeout}s")
                self.state.arrived.wait(remaining)
            return list(self.state.messages)

    def stop(self) -> None:
        for controller in self.controllers:
            controller.stop()


def start_smtp_server(tls: TlsFiles | None, oauth: OAuthServer | None, *, sink: bool = False) -> SmtpServer:
    """Start the listeners. ``sink=True``: one plain port, no AUTH (what Postfix relays "internet" mail to)."""
    state = SmtpState(users={email: default_password(email) for email in DEFAULT_USERS})
    handler = RigHandler(state, _introspector(oauth) if oauth else None)
    common: dict[str, Any] = {
        "hostname": LOOPBACK,
        "server_hostname": "localhost",
        "ident": "helpdesk-rig-smtpd",
        "data_size_limit": None,  # the handler enforces max_message_size with a 552 that names the sizes
        "authenticator": handler.authenticator,
    }
    controllers: list[Controller] = []

    def start(port: int, **kwargs: Any) -> int:
        controller = _Controller(handler, port=port, **{**common, **kwargs})
        controller.start()
        controllers.append(controller)
        return port

    try:
        plain = start(free_port(), auth_required=False, auth_require_tls=False)
        starttls = tls_port = 0
        if not sink:
            assert tls is not None
            ctx = tls.server_context()
            starttls = start(
                free_port(), tls_context=ctx, require_starttls=True, auth_required=True, auth_require_tls=True
            )
            tls_port = start(free_port(), ssl_context=ctx, smtp_class=_ImplicitTlsSMTP)
    except BaseException:
        for controller in controllers:
            controller.stop()
        raise
    return SmtpServer(LOOPBACK, starttls, tls_port, plain, tls, state, tuple(controllers))
