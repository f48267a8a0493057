"""Inbound ingestion benchmark: Dovecot -> one worker process -> PostgreSQL + S3, end to end.

    python bench/ingest.py --messages 2000

Starts private servers with the test rig (Dovecot, SeaweedFS; PostgreSQL unless DATABASE_URL is set, with
the rig's fsync=off settings), generates a realistic mix into a Dovecot mailbox (new mail and replies, plain
and HTML, non-ASCII subjects, 1-2 attachments of 10-200 KB on a quarter of them), measures the floor (a
bare imapclient FETCH of the same messages), then runs `manage.py poll_mailboxes --once` as one worker
process and checks the result. The last line printed is one JSON object with the figures:
`messages_per_second` counts the worker process from its start (Django and boto3 imports included),
`poll_messages_per_second` the poll alone, as a long-running worker sees it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HELPDESK_TESTING", "1")
os.environ.setdefault("SECRET_KEY", "bench-" + secrets.token_hex(16))
os.environ.setdefault("LOG_LEVEL", "WARNING")

SUBJECTS = [
    "Invoice question",
    "Réclamation commande n° {n}",
    "Lieferung verspätet \u2013 Bestellung {n}",
    "\u041d\u0435 \u0440\u0430\u0431\u043e\u0442\u0430\u0435\u0442 \u0432\u0445\u043e\u0434",
    "パスワードをリセットできません",
    "Printer on fire again",
    "Refund for order #{n}",
    "Zugang gesperrt 🙁",
]
WORDS = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
]


def generate(n: int, seed: int = 1) -> list[bytes]:
    """A realistic mix: ~70 % new mail, ~30 % replies to earlier mail of the same sender."""
    rnd = random.Random(seed)
    out: list[bytes] = []
    earlier: list[tuple[str, str, str]] = []  # (sender, message-id, subject)
    for i in range(n):
        msg = EmailMessage()
        if earlier and rnd.random() < 0.3:
            sender, parent, subject = rnd.choice(earlier)
            msg["In-Reply-To"] = parent
            msg["References"] = parent
            subject = f"Re: {subject}"
        else:
            sender = f"Customer {i % 400} <customer{i % 400}@client{i % 37}.test>"
            subject = rnd.choice(SUBJECTS).format(n=1000 + i)
        mid = make_msgid(domain=sender.split("@")[1].rstrip(">"))
        msg["From"] = sender
        msg["To"] = "support@bench.test"
        msg["Subject"] = subject
        msg["Date"] = format_datetime(time.gmtime and __import__("datetime").datetime.now().astimezone())
        msg["Message-ID"] = mid
        body = "\n".join(" ".join(rnd.choices(WORDS, k=12)) for _ in range(rnd.randint(3, 30)))
        msg.set_content(f"Hello,\n\n{body}\n\nRegards\n")
        if rnd.random() < 0.5:
            msg.add_alternative(
                f"<html><body><p>Hello,</p><p>{body}</p><p><b>Regards</b></p></body></html>", subtype="html"
            )
        if rnd.random() < 0.25:
            for k in range(rnd.randint(1, 2)):
                payload = rnd.randbytes(rnd.randint(10_000, 200_000))
                msg.add_attachment(
                    payload, maintype="application", subtype="octet-stream", filename=f"file-{i}-{k}.bin"
                )
        out.append(msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")))
        earlier.append((sender, mid, subject))
    return out


def _database_url(workdir: Path, stack: list) -> str:
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    from tests.rig import database

    # A private server (the rig's settings: fsync off), so other users of a shared one do not skew the figures.
    url = database._start_postgres()
    stack.append(database.stop_private_servers)
    if not url:
        raise SystemExit("PostgreSQL is needed (set DATABASE_URL or install postgresql)")
    return url


def _create_db(url: str) -> str:
    import psycopg

    base, _, _name = url.rpartition("/")
    name = f"helpdesk_bench_{secrets.token_hex(4)}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


def _drop_db(url: str) -> None:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def floor_fetch(dovecot, email: str, batch: int = 200) -> tuple[float, int]:
    with dovecot.imap(email, security="plain") as client:
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        t0 = time.perf_counter()
        total = 0
        for i in range(0, len(uids), batch):
            data = client.fetch(uids[i : i + batch], ["BODY.PEEK[]"])
            total += sum(len(d[b"BODY[]"]) for d in data.values())
        return time.perf_counter() - t0, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--profile", action="store_true", help="Run the worker in-process under cProfile.")
    args = parser.parse_args()

    from tests.rig.dovecot import start_dovecot
    from tests.rig.oauth import OAuthServer
    from tests.rig.procs import stop_all
    from tests.rig.s3 import start_seaweedfs
    from tests.rig.tls import create_tls_files

    workdir = Path(tempfile.mkdtemp(prefix="helpdesk-bench-"))
    workdir.chmod(0o711)
    cleanup: list = []
    try:
        tls = create_tls_files(workdir / "tls")
        dovecot = start_dovecot(workdir / "dovecot", tls, OAuthServer(base_url="http://127.0.0.1:9"))
        s3 = start_seaweedfs(workdir / "s3")
        db_url = _create_db(_database_url(workdir, cleanup))
        cleanup.append(lambda: _drop_db(db_url))
        env = {**os.environ, **s3.env(), "DATABASE_URL": db_url}
        os.environ.update(env)

        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from accounts.models import Tenant
        from mailboxes.models import InboundMessage, Mailbox
        from tickets.models import Attachment, Message, Ticket

        email = "support@bench.test"
        password = dovecot.add_user(email)
        tenant = Tenant.objects.create(name="Bench", slug="bench")
        mailbox = Mailbox.objects.create(
            tenant=tenant, name="Support", key="SUP", email=email, imap_host="127.0.0.1",
            imap_port=dovecot.imap_port, imap_security="none", imap_username=email, imap_password=password,
            allow_private_hosts=True, connected_at=__import__("django.utils.timezone").utils.timezone.now(),
        )  # fmt: skip

        t0 = time.perf_counter()
        mails = generate(args.messages)
        with dovecot.imap(email, security="plain") as client:
            for raw in mails:
                client.append("INBOX", raw)
        fill_s = time.perf_counter() - t0
        floor_s, _ = floor_fetch(dovecot, email)
        print(
            f"generated and appended {len(mails)} messages ({sum(map(len, mails)) / 1e6:.1f} MB) in {fill_s:.1f}s"
        )
        print(
            f"floor: bare FETCH of {len(mails)} messages in {floor_s:.2f}s = {len(mails) / floor_s:.0f} msg/s"
        )

        if args.profile:
            import cProfile
            import pstats
            from collections import Counter

            from django.db import connection

            from mailboxes import polling

            queries: Counter = Counter()

            def count(execute, sql, params, many, context):
                queries[sql.split(" ")[0] + " " + (sql.split('"')[1] if '"' in sql else "")] += 1
                return execute(sql, params, many, context)

            prof = cProfile.Profile()
            t0 = time.perf_counter()
            with connection.execute_wrapper(count):
                prof.runcall(polling.poll, mailbox.pk)
            elapsed = poll_s = time.perf_counter() - t0
            print("queries:", sum(queries.values()), queries.most_common(40))
            peak_mb = 0.0
            pstats.Stats(prof).sort_stats("cumulative").print_stats(60)
            pstats.Stats(prof).sort_stats("tottime").print_stats(40)
        else:
            cmd = [
                sys.executable,
                str(ROOT / "manage.py"),
                "poll_mailboxes",
                "--once",
                "--mailbox",
                str(mailbox.pk),
            ]
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            _, status, usage = os.wait4(proc.pid, 0)
            elapsed = time.perf_counter() - t0
            out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
            proc.returncode = os.waitstatus_to_exitcode(status)
            print(out.strip())
            if proc.returncode:
                print(err[-3000:])
            poll_match = re.search(r"fetched \d+; .*; ([\d.]+)s", out)  # the poll itself, without start-up
            poll_s = float(poll_match.group(1)) if poll_match else elapsed
            peak_match = re.search(r"peak RSS: ([\d.]+) MB", out)  # VmHWM, reported by the worker itself
            peak_mb = float(peak_match.group(1)) if peak_match else usage.ru_maxrss / 1024
            cpu_s = usage.ru_utime + usage.ru_stime
            print(f"worker CPU {cpu_s:.1f}s for {elapsed:.1f}s wall ({100 * cpu_s / elapsed:.0f} %)")

        rows = InboundMessage.objects.filter(mailbox=mailbox)
        latencies = sorted(
            (r.processed_at - r.received_at).total_seconds() * 1000
            for r in rows.only("processed_at", "received_at")
            if r.processed_at
        )
        steps: dict[str, list[float]] = {}
        for trace in rows.values_list("trace", flat=True):
            for step in trace:
                steps.setdefault(step["step"], []).append(step.get("ms", 0))
        print("trace steps, mean ms:", {k: round(statistics.mean(v), 2) for k, v in steps.items()})
        counts = {
            s: rows.filter(status=s).count() for s in ("processed", "quarantined", "duplicate", "stored")
        }
        messages = Message.objects.filter(ticket__mailbox=mailbox)
        replies_expected = sum(1 for m in mails if b"In-Reply-To: <" in m[:8192])
        attachments_expected = sum(m.count(b"Content-Disposition: attachment") for m in mails)
        figures = {
            "messages": len(mails),
            "seconds": round(elapsed, 2),
            "messages_per_second": round(len(mails) / elapsed, 1),
            "poll_messages_per_second": round(len(mails) / poll_s, 1),  # without the worker's start-up
            "floor_messages_per_second": round(len(mails) / floor_s, 1),
            "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
            "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 1) if latencies else None,
            "peak_rss_mb": round(peak_mb, 1),
            "processed": counts["processed"],
            "quarantined": counts["quarantined"],
            "duplicates": counts["duplicate"],
            "unprocessed": counts["stored"],
            "tickets": Ticket.objects.filter(mailbox=mailbox).count(),
            "messages_stored": messages.count(),
            "distinct_message_ids": messages.values("message_id").distinct().count(),
            "replies_threaded": messages.filter(threading_signal="in-reply-to").count(),
            "replies_expected": replies_expected,
            "attachments": Attachment.objects.filter(message__ticket__mailbox=mailbox).count(),
            "attachments_expected": attachments_expected,
        }
        for key, value in figures.items():
            print(f"{key:>28}: {value}")
        print(json.dumps(figures))
    finally:
        from django.db import connections

        with contextlib.suppress(Exception):
            connections.close_all()
        for fn in reversed(cleanup):
            try:
                fn()
            except Exception as exc:  # cleanup must not hide the result
                print(f"cleanup: {exc}", file=sys.stderr)
        stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
