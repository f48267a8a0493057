"""A private Dovecot 2.3: IMAP (STARTTLS), IMAPS and LMTP on free ports, users in a passwd-file, XOAUTH2 and
OAUTHBEARER checked by introspecting tokens at the rig's OAuth server.

Configuration notes (each line below cost someone an afternoon, see the rig notes):

* ``auth_failure_delay = 0`` and the ``anvil-auth-penalty`` listener with ``mode = 0``: otherwise every failed
  login from 127.0.0.1 delays the next ones by 2, 4, 8... up to 15 s, and negative tests time out.
* passwd-file (one file per user, see ``add_user``) as *userdb* too, not ``static``: LMTP and doveadm need a
  userdb lookup, and unknown recipients then get a clean ``550 5.1.1``.
* Dovecot keeps its inherited stderr open for life: it gets a log file, never a pipe.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from imapclient import IMAPClient

from tests.rig import deps, procs
from tests.rig.oauth import OAuthServer
from tests.rig.oauth_server import DEFAULT_USERS, default_password
from tests.rig.ports import LOOPBACK, free_ports
from tests.rig.tls import TlsFiles

SPECIAL_USE = {
    "Sent": r"\Sent",
    "Drafts": r"\Drafts",
    "Trash": r"\Trash",
    "Archive": r"\Archive",
    "Junk": r"\Junk",
}
BINARIES = {
    "dovecot": "dovecot-imapd",
    "doveadm": "dovecot-imapd",
    "/usr/lib/dovecot/imap": "dovecot-imapd",
    "/usr/lib/dovecot/lmtp": "dovecot-lmtpd",
}
MAIL_USER = "nobody"  # owner of the mail files when we run as root

_users_lock = threading.Lock()


@dataclass(frozen=True)
class Dovecot:
    """A running Dovecot with helpers to manage users and mailboxes from tests."""

    host: str
    imap_port: int  # plain IMAP; STARTTLS available, plaintext LOGIN allowed too
    imaps_port: int  # implicit TLS
    lmtp_port: int
    tls: TlsFiles
    root: Path
    config_path: Path
    sasl_socket: Path | None  # Dovecot auth socket for Postfix (None when there is no postfix account)
    users: dict[str, str] = field(compare=False)
    process: procs.Process = field(repr=False, compare=False)

    @property
    def ca_path(self) -> Path:
        """CA file that verifies the IMAPS/STARTTLS certificate (SAN: localhost, 127.0.0.1)."""
        return self.tls.ca_path

    @property
    def log_path(self) -> Path:
        return self.root / "dovecot.log"

    def add_user(self, email: str, password: str | None = None) -> str:
        """Create or update a mailbox user; usable at once.

        One passwd-file per user (``users/<domain>/<local>``): Dovecot re-reads a passwd-file at most once a
        second, so a user appended to a shared file right after a lookup stayed unknown for up to 1 s. A new
        file is read on first use. Changing an existing user's password waits for the next second.
        """
        email = email.lower()
        password = password or default_password(email)
        if ":" in password or "\n" in password:
            raise ValueError("passwd-file passwords cannot contain ':' or newlines")
        with _users_lock:
            changed = email in self.users and self.users[email] != password
            self.users[email] = password
            _write_user(self.root / "users", email, password)
        if changed:
            time.sleep(1.02 - time.time() % 1)  # Dovecot checks a file for changes at most once a second
        return password

    @contextlib.contextmanager
    def imap(
        self,
        email: str,
        password: str | None = None,
        *,
        security: Literal["starttls", "ssl", "plain"] = "ssl",
        timeout: float = 10,
    ) -> Iterator[IMAPClient]:
        """A logged-in IMAPClient (password from the user table unless given); logs out afterwards."""
        client = self.connect(security=security, timeout=timeout)
        try:
            client.login(email, password or self.users[email.lower()])
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def connect(
        self, *, security: Literal["starttls", "ssl", "plain"] = "ssl", timeout: float = 10
    ) -> IMAPClient:
        """An IMAPClient that is connected (and TLS-verified against the rig CA) but not logged in."""
        ctx = self.tls.client_context()
        if security == "ssl":
            return IMAPClient(self.host, port=self.imaps_port, ssl=True, ssl_context=ctx, timeout=timeout)
        client = IMAPClient(self.host, port=self.imap_port, ssl=False, timeout=timeout)
        if security == "starttls":
            client.starttls(ctx)
        return client

    def append(self, email: str, raw: bytes, folder: str = "INBOX", flags: Iterable[str] = ()) -> int | None:
        """Store a raw message via IMAP APPEND as that user (creating the folder); returns its UID."""
        with self.imap(email) as client:
            if folder.upper() != "INBOX" and not client.folder_exists(folder):
                client.create_folder(folder)
            response = client.append(folder, raw, flags=tuple(flags))
        # "[APPENDUID <uidvalidity> <uid>] Append completed."
        text = response.decode(errors="replace") if isinstance(response, bytes) else str(response)
        parts = text.split("APPENDUID", 1)[-1].split("]")[0].split()
        return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None

    def fetch_all(self, email: str, folder: str = "INBOX") -> list[bytes]:
        """Every message of a folder as raw bytes, in UID order, without setting \\Seen."""
        with self.imap(email) as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            data = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
        return [data[uid][b"BODY[]"] for uid in sorted(data)]

    def wait_for_messages(
        self,
        email: str,
        count: int = 1,
        folder: str = "INBOX",
        timeout: float = 15,
        match: Callable[[bytes], bool] | None = None,
    ) -> list[bytes]:
        """Poll until the folder holds ``count`` messages (matching ``match`` if given); return them.

        For mail that arrives asynchronously (Postfix -> LMTP). Raises AssertionError with the Dovecot log tail.
        """
        deadline = time.monotonic() + timeout
        while True:
            messages = [m for m in self.fetch_all(email, folder) if match is None or match(m)]
            if len(messages) >= count:
                return messages
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{email}/{folder}: {len(messages)} of {count} messages after {timeout}s\n"
                    + procs.log_tail(self.log_path, 20)
                )
            time.sleep(0.05)

    def doveadm(self, *args: str) -> str:
        """Run ``doveadm -c <our config> ARGS`` (e.g. ``"mailbox", "status", "-u", email, "messages", "INBOX"``)."""
        return procs.run(
            [deps.find_binary("doveadm") or "doveadm", "-c", self.config_path, *args]
        ).stdout.decode()


def _write_user(users_dir: Path, email: str, password: str) -> None:
    local, _, domain = email.partition("@")
    path = users_dir / domain / local
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{local}.tmp")
    tmp.write_text(f"{email}:{{PLAIN}}{password}::::::\n")
    os.chmod(tmp, 0o644)  # the auth process runs unprivileged
    with contextlib.suppress(FileNotFoundError):
        # Dovecot notices a change by (mtime seconds, size): force a different mtime for a same-size rewrite.
        old = path.stat().st_mtime
        os.utime(tmp, (old + 1, old + 1))
    tmp.replace(path)


def _config(root: Path, ports: dict[str, int], tls: TlsFiles, postfix_user: str | None) -> str:
    root_s = str(root)
    if procs.is_root():
        mail_uid, mail_gid = MAIL_USER, grp.getgrgid(pwd.getpwnam(MAIL_USER).pw_gid).gr_name
        privileges = f"mail_uid = {mail_uid}\nmail_gid = {mail_gid}\nfirst_valid_uid = 1\n"
        chroots = ""
    else:
        # Unprivileged instance: everything runs as us, and chroot (which needs root) is off.
        me = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
        privileges = (
            f"default_internal_user = {me}\ndefault_internal_group = {group}\ndefault_login_user = {me}\n"
        )
        chroots = "service anvil {\n  chroot =\n}\nservice imap-login {\n  chroot =\n}\n"
    sasl = ""
    if postfix_user:
        sasl = (
            "service auth {\n  unix_listener auth-postfix {\n    mode = 0660\n"
            f"    user = {postfix_user}\n    group = {postfix_user}\n  }}\n}}\n"
        )
    mailboxes = "".join(
        f"  mailbox {name} {{\n    special_use = {flag}\n    auto = subscribe\n  }}\n"
        for name, flag in SPECIAL_USE.items()
    )
    return f"""# generated by tests/rig/dovecot.py
base_dir = {root_s}/run
state_dir = {root_s}/state
instance_name = helpdesk-rig-{ports["imap"]}
log_path = {root_s}/dovecot.log
protocols = imap lmtp
listen = {LOOPBACK}
ssl = yes
ssl_cert = <{tls.cert_path}
ssl_key = <{tls.key_path}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
auth_verbose = yes
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8 ::1/128
mail_location = maildir:~/Maildir
{privileges}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {root_s}/users/%d/%n
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root_s}/oauth2.conf.ext
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root_s}/users/%d/%n
  default_fields = home={root_s}/mail/%d/%n
}}
namespace inbox {{
  inbox = yes
  separator = /
{mailboxes}}}
protocol imap {{
  mail_max_userip_connections = 100
}}
protocol lmtp {{
  postmaster_address = postmaster@example.test
}}
service imap-login {{
  inet_listener imap {{
    address = {LOOPBACK}
    port = {ports["imap"]}
  }}
  inet_listener imaps {{
    address = {LOOPBACK}
    port = {ports["imaps"]}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {LOOPBACK}
    port = {ports["lmtp"]}
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{chroots}{sasl}"""


def _oauth2_config(oauth: OAuthServer) -> str:
    host = oauth.base_url.removeprefix("http://")
    return f"""introspection_mode = post
introspection_url = http://{oauth.introspection_client_id}:{oauth.introspection_client_secret}@{host}/o/introspect/
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
"""


def _postfix_account() -> str | None:
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return None
    return "postfix" if procs.is_root() else None


def start_dovecot(root: Path, tls: TlsFiles, oauth: OAuthServer) -> Dovecot:
    """Write the config under ``root`` and start ``dovecot -F``; skips/fails when Dovecot is missing."""
    binaries = deps.require("dovecot", BINARIES)
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    if procs.is_root():
        uid, gid = procs.user_ids(MAIL_USER)
        os.chown(root / "mail", uid, gid)
    imap, imaps, lmtp = free_ports(3)
    ports = {"imap": imap, "imaps": imaps, "lmtp": lmtp}
    users = {email: default_password(email) for email in DEFAULT_USERS}
    for email, password in users.items():
        _write_user(root / "users", email, password)
    (root / "oauth2.conf.ext").write_text(_oauth2_config(oauth))
    postfix_user = _postfix_account()
    config = root / "dovecot.conf"
    config.write_text(_config(root, ports, tls, postfix_user))
    proc = procs.spawn(
        "dovecot",
        [binaries["dovecot"], "-F", "-c", config],
        log_path=root / "stderr.log",
        extra_logs=[root / "dovecot.log"],
        stop_timeout=3,
    )
    proc.wait_for_ports([imap, imaps, lmtp])
    return Dovecot(
        host=LOOPBACK,
        imap_port=imap,
        imaps_port=imaps,
        lmtp_port=lmtp,
        tls=tls,
        root=root,
        config_path=config,
        sasl_socket=root / "run" / "auth-postfix" if postfix_user else None,
        users=users,
        process=proc,
    )
