"""Outbound throughput: mails per second through the whole sending pipeline into a local SMTP sink.

    python bench/send.py --messages 1000

1. queue N replies with `outbound.queue()` (the outbox rows, one transaction; timed separately);
2. the pipeline: `outbound.send_batch()` claims them in chunks, builds each .eml (layout, headers,
   a small attachment streamed from storage), stores it, marks the final dot, sends it over ONE reused
   SMTP connection and records the result;
3. the floor: bare smtplib sending the very same stored .eml bytes over one connection to the same sink.
Steps 2 and 3 take turns in `--rounds` slices, so a burst of other load on the machine hits both alike.

The sink is an aiosmtpd server in its own process that accepts and discards; like Postfix, Gmail and
Microsoft 365 it advertises PIPELINING (RFC 2920), which the sender uses (`--no-pipelining` to compare). The database is a fresh SQLite file
in a temporary folder unless DATABASE_URL is set (e.g. the PostgreSQL of the test rig). The last line is
one JSON object with `messages_per_second` and `floor_messages_per_second`; the target is at least half
of the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class Sink:
    """aiosmtpd handler: counts and forgets; advertises PIPELINING like Postfix, Gmail and Microsoft 365 do
    (aiosmtpd reads commands in order, so pipelined ones are fine; it just does not say so by itself)."""

    def __init__(self, pipelining: bool = True) -> None:
        self.count = 0
        self.pipelining = pipelining

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            return [responses[0], "250-PIPELINING", *responses[1:]]
        return responses

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        return "250 2.0.0 Ok: queued"


def run_sink(port: int, pipelining: bool) -> None:
    """The sink as its own process (like a real server: it does not share our interpreter's lock)."""
    import asyncio
    import signal

    from aiosmtpd.controller import Controller

    handler = Sink(pipelining)
    controller = Controller(handler, hostname="127.0.0.1", port=port, data_size_limit=None)
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    print(handler.count, flush=True)
    del asyncio


def start_sink(pipelining: bool = True) -> tuple[subprocess.Popen, int]:
    port = free_port()
    argv = [sys.executable, __file__, "--sink", str(port)] + ([] if pipelining else ["--no-pipelining"])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=str(ROOT))
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("the SMTP sink did not start")
    return proc, port


def stop_sink(proc: subprocess.Popen) -> int:
    proc.send_signal(15)
    out, _ = proc.communicate(timeout=10)
    return int(out.strip().splitlines()[-1])


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_django(tmp: Path) -> None:
    os.environ.setdefault("HELPDESK_TESTING", "1")
    os.environ.setdefault("SECRET_KEY", "bench-secret-key")
    os.environ["HELPDESK_VAR_DIR"] = str(tmp)
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp / 'bench.sqlite3'}")
    os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--attachment-bytes", type=int, default=2048, help="0 for no attachment")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--no-pipelining", action="store_true", help="the sink does not advertise PIPELINING (RFC 2920)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="pipeline and floor take turns this many times")
    parser.add_argument("--profile", action="store_true", help="print where the pipeline spends its time")
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        run_sink(args.sink, not args.no_pipelining)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="helpdesk-bench-send-"))
    try:
        return run(args, tmp)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args, tmp: Path) -> int:
    setup_django(tmp)
    from django.db import connection, transaction

    from accounts.models import Membership, Role, Tenant, User
    from mailboxes import blobs, outbound
    from mailboxes.models import Mailbox, OutboundEmail, OutboundStatus
    from tickets.models import Contact, Message, MessageKind, Ticket

    sink, port = start_sink(not args.no_pipelining)
    received = 0
    try:
        tenant = Tenant.objects.create(name="Bench Support", slug=f"bench{os.getpid()}")
        agent = User.objects.create_user(f"agent{os.getpid()}@bench.test", "x" * 12, name="Bea Bench")
        Membership.objects.create(tenant=tenant, user=agent, role=Role.AGENT)
        mailbox = Mailbox.objects.create(
            tenant=tenant,
            name="Bench",
            key="B",
            email="support@bench.test",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
            smtp_same_credentials=False,
            allow_private_hosts=True,
            save_to_sent=False,
        )
        from mailboxes.models import EmailSettings

        EmailSettings.objects.update_or_create(
            tenant=tenant, defaults={"hourly_send_cap": 0, "daily_send_cap": 0}
        )
        contact = Contact.objects.create(tenant=tenant, email="dana@customer.test", name="Dana Customer")
        ticket = Ticket.objects.create(
            tenant=tenant, number=1, title="Printer does not print", requester=contact, mailbox=mailbox
        )
        Message.objects.create(
            tenant=tenant, ticket=ticket, kind=MessageKind.INBOUND, text="It says paper jam.",
            message_id="<orig@customer.test>", from_addr=contact.email,
        )  # fmt: skip
        attachments = []
        if args.attachment_bytes:
            blob = blobs.put(os.urandom(args.attachment_bytes))
            attachments = [
                {
                    "key": blob.key,
                    "filename": "report.pdf",
                    "content_type": "application/pdf",
                    "size": blob.size,
                }
            ]
        body = (
            "Hello Dana,\n\nwe replaced the fuser unit; please try again.\n\n-- \nBea Bench\nBench Support\n"
        )

        # 1. queue
        t0 = time.perf_counter()
        with transaction.atomic():
            for i in range(args.messages):
                outbound.queue(
                    tenant=tenant, mailbox=mailbox, kind="reply", to=[f"Dana Customer <dana+{i}@customer.test>"],
                    subject=f"Re: Printer does not print ({i})", text=body, ticket=ticket,
                    in_reply_to="<orig@customer.test>", references=["<orig@customer.test>"],
                    attachments=attachments, created_by=agent,
                )  # fmt: skip
            transaction.get_connection().run_on_commit = []  # the benchmark sends below, not on commit
        queue_seconds = time.perf_counter() - t0

        # 2. and 3., interleaved in rounds so that both see the same machine (other load comes and goes):
        # the pipeline sends the next slice of the outbox, then bare smtplib sends the very same stored
        # .eml files of that slice over one connection (the floor).
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
        pipeline_seconds = pipeline_cpu = floor_seconds = floor_cpu = 0.0
        total_bytes = 0
        per_round = -(-args.messages // args.rounds)
        for _ in range(args.rounds):
            if profiler is not None:
                profiler.enable()
            t0, c0 = time.perf_counter(), time.process_time()
            result = outbound.send_batch(mailbox.pk, limit=per_round)
            pipeline_seconds += time.perf_counter() - t0
            pipeline_cpu += time.process_time() - c0
            if profiler is not None:
                profiler.disable()
            if not result.ids:
                break
            rows = OutboundEmail.objects.filter(pk__in=result.ids).order_by("pk").values_list("raw_key", "to")
            prepared = [(blobs.read(key), [to[0].rsplit("<", 1)[-1].rstrip(">")]) for key, to in rows]
            total_bytes += sum(len(raw) for raw, _ in prepared)
            t0, c0 = time.perf_counter(), time.process_time()
            with smtplib.SMTP("127.0.0.1", port) as conn:
                for raw, rcpts in prepared:
                    conn.sendmail(mailbox.email, rcpts, raw)
            floor_seconds += time.perf_counter() - t0
            floor_cpu += time.process_time() - c0
        if profiler is not None:
            import pstats

            pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(45)
        sent = OutboundEmail.objects.filter(tenant=tenant, status=OutboundStatus.SENT).count()
        if sent != args.messages:
            print(f"pipeline sent {sent} of {args.messages} ({result})", file=sys.stderr)
            return 1
    finally:
        received = stop_sink(sink)
    if received != 2 * args.messages:
        print(f"the sink received {received} messages, expected {2 * args.messages}", file=sys.stderr)
        return 1

    mps = args.messages / pipeline_seconds
    floor = args.messages / floor_seconds
    report = {
        "messages": args.messages,
        "database": connection.vendor,
        "attachment_bytes": args.attachment_bytes,
        "sink_pipelining": not args.no_pipelining,
        "rounds": args.rounds,
        "average_message_bytes": round(total_bytes / args.messages),
        "queue_messages_per_second": round(args.messages / queue_seconds, 1),
        "pipeline_seconds": round(pipeline_seconds, 3),
        "floor_seconds": round(floor_seconds, 3),
        "pipeline_cpu_ms_per_message": round(1000 * pipeline_cpu / args.messages, 2),
        "floor_cpu_ms_per_message": round(1000 * floor_cpu / args.messages, 2),
        "messages_per_second": round(mps, 1),
        "floor_messages_per_second": round(floor, 1),
        "ratio_to_floor": round(mps / floor, 3),
        "target_met": mps >= floor / 2,
    }
    print(
        f"queued {args.messages} in {queue_seconds:.2f}s; pipeline {pipeline_seconds:.2f}s "
        f"({mps:.0f}/s); bare smtplib {floor_seconds:.2f}s ({floor:.0f}/s); ratio {mps / floor:.2f}"
    )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
