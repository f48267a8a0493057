"""Web benchmark: server time of the agent's pages on one tenant with 100,000 tickets (PostgreSQL).

    python bench/web.py --tickets 100000             # seeds once (a minute or two), then measures
    python bench/web.py --tickets 100000 --reseed    # throws the seed away and builds it again
    python bench/web.py --only search,ticket --requests 100
    python bench/web.py --queries                    # also lists each page's queries with their times
    python bench/web.py --explain view_solved_deep   # EXPLAIN ANALYZE of that page's slow queries
    python bench/web.py --profile ticket_50_messages # cProfile of that page
    python bench/web.py --drop                       # delete the seeded database and stop

Database: the server of DATABASE_URL if set, else PostgreSQL on 127.0.0.1:5432 (trust auth as `postgres`,
like the test rig), else (or with RIG_PRIVATE_SERVERS=1) a private server started with the test rig's
binaries and settings (fsync off) whose data folder is kept in var/bench/postgres, so the seed survives. The
seed has its own database, `helpdesk_bench_web_<tickets>`, with a marker table (`bench_seed`: seed version
and sizes). A rerun with a matching marker only migrates (new indexes are built over the seeded rows) and
measures; a missing or different marker, or --reseed, builds it again.

The seed (deterministic): one tenant with 30 members (an owner, an admin, 24 agents, 4 light agents), 8
queues (two restricted, one sorting customer replies first), 5 mailboxes (two visible to chosen members
only), 40 tags, business hours and three SLA policies, 2,000 customers with their domains, 30,000 contacts,
and --tickets tickets created over two years: recent ones mostly new, open or pending, older ones mostly
solved or closed (about 7 % open in all), 30 % of open ones unassigned, requesters, customers and tags
skewed the way real mail is, tickets read and unread. --messages messages (4 per ticket by default:
customer mail, agent replies, internal notes, automatic mail) with bodies drawn from a Zipf-distributed
vocabulary, so full-text search finds common words everywhere and rare ones seldom. One long-running
ticket has 50 messages spread over a year, with the inbound ledger rows (processing traces), attachments
and outbound rows the pipeline leaves. Search vectors are built from the same text and weights as
tickets.search.reindex() (checked on a few tickets after seeding). Bulk rows go in by COPY with secondary
indexes dropped and rebuilt afterwards, then VACUUM ANALYZE: about a minute on an idle 2-core machine.

Measurement: in-process, Django's test Client signed in as an agent (not an admin: queue and mailbox
visibility apply), DEBUG off. Every page is requested --warmup times, then --requests times in rounds over
all pages (so a burst of other work on the machine slows every page a little, not one page a lot), timing
only the client.get() call: the whole Django request (middleware, session, queries, templates). The sidebar
counters are cached until some ticket changes, which on a busy helpdesk is every few seconds, so the cache
is cleared before each request and they are computed every time (--cached-counters keeps the cache).
Pages: each built-in view (page 1 and a deep keyset page, up to --deep-page), each visible queue (likewise),
two combined filters, three searches (two words, one very common word, one rare word), the ticket with 50
messages, and the live-update poll. Printed per page: p50, p95 and max wall time, the median CPU time of
this process (Python: on a machine busy with other work wall time grows, CPU time much less), and the
number and total time of the queries of one more request. The last line is one JSON object
{page: {"p50_ms": ..., "p95_ms": ...}}. Target: p95 under 100 ms for every page on a 2-core machine.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import json
import math
import os
import pstats
import random
import secrets
import signal
import statistics
import sys
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HELPDESK_TESTING", "1")
os.environ.setdefault("SECRET_KEY", "bench-" + secrets.token_hex(16))
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["DEBUG"] = "false"
warnings.filterwarnings("ignore", message="No directory at")  # whitenoise: no collected static files here

SEED_VERSION = 3  # bump when the generated data changes: older seeds are rebuilt
RANDOM_SEED = 6
LOCAL_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
PRIVATE_DIR = ROOT / "var" / "bench" / "postgres"
PAGE_SIZE = 50
BIG_THREAD = 50
SLUG = "bench"
BENCH_USER = "agent01@bench.test"

# --- the cast -----------------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


FIRST = _words(
    "Anna Ben Carla David Emma Felix Greta Hugo Ines Jonas Karin Lukas Maria Nina Oscar Paula Quentin "
    "Rosa Simon Tara Ugo Vera Walter Xenia Yusuf Zoe Amelie Bruno Chloe Dmitri Elif Farid Giulia Hannah "
    "Ivan Julia Kenji Lea Marco Noor Olga Pierre Rahul Sofia Tomas Umut Valentina Wei Yara"
)
LAST = _words(
    "Schmidt Muller Rossi Dubois Novak Kowalski Garcia Smith Jansen Nielsen Berg Costa Weber Fischer "
    "Moreau Silva Horvat Ivanova Tanaka Kim Nguyen Okafor Haddad Larsen Kaya Romano Meyer Bauer Wolf "
    "Schwarz Klein Lopez Martin Bernard Petit Ricci Marino Greco Bianchi Ferrari"
)
COMPANY_A = _words("Blue Red Green Nordic Alpine Urban Coastal Silver Golden Bright Rapid Prime Solid Clear")
COMPANY_B = _words("Logistics Foods Systems Robotics Textiles Energy Media Pharma Motors Retail Studios Labs")
QUEUES = [  # name, weight, restricted, replies first
    ("Technical", 30, False, False),
    ("Billing", 20, False, False),
    ("Sales", 10, False, False),
    ("Returns", 10, False, True),
    ("Shipping", 10, False, False),
    ("Accounts", 8, False, False),
    ("VIP", 4, True, False),
    ("Legal", 3, True, False),
]
NO_QUEUE_WEIGHT = 5
MAILBOXES = [  # key, name, weight, visible to chosen members only (and is the bench agent one of them?)
    ("SUP", "Support", 50, None),
    ("BIL", "Billing", 20, None),
    ("SAL", "Sales", 15, None),
    ("VIP", "VIP desk", 10, True),
    ("HR", "People team", 5, False),
]
TAGS = _words(
    "urgent vip refund bug feature-request invoice login password shipping damaged warranty api mobile "
    "android ios outage billing-error duplicate spam feedback upgrade downgrade cancellation gdpr export "
    "integration sso onboarding training printer network vpn email calendar security hardware license "
    "renewal discount partner escalated"
)
TITLES = [
    "Cannot log in to the portal",
    "Invoice {n} shows the wrong amount",
    "Order {n} arrived damaged",
    "Refund for order {n}",
    "Password reset link does not work",
    "Printer on fire again",
    "VPN drops every few minutes",
    "Question about our contract renewal",
    "Export to CSV is empty",
    "Two-factor codes are not accepted",
    "Shipment {n} is late",
    "Please cancel subscription {n}",
    "API returns 500 on /orders",
    "Mobile app crashes on start",
    "Change the billing address",
    "Add three more licenses",
    "Calendar sync stopped working",
    "Where is my order {n}?",
    "Wrong item delivered in order {n}",
    "Request for a quote",
    "Data export under GDPR",
    "SSO with our identity provider",
    "Training session for new staff",
    "Warranty claim for serial {n}",
    "Duplicate charge on card",
    "Upgrade to the business plan",
    "Email notifications not arriving",
    "Slow dashboard since yesterday",
    "Integration with our ERP",
    "Feedback on the new release",
]
COMMON = _words(
    "the to and a of i you is for it in we that this have please our on not with be can my your are was "
    "order account thanks hello hi regards team support help issue problem would will from as but at an "
    "if me there all could do just one has they when about still need any so get no an new time been also "
    "what please invoice payment refund delivery login password error message email customer service "
    "product price update since last week yesterday today again working works work attached file "
    "screenshot number reference ticket reply answer question information details address phone contract "
    "license subscription plan upgrade cancel change report data export import sync server connection "
    "network browser app mobile version install setting settings user users admin access permission "
    "download upload shipment package tracking warehouse return replacement warranty damaged broken "
    "missing wrong charge card bank transfer receipt tax discount quote offer meeting call tomorrow "
    "monday friday morning"
)
SYLLABLES = _words("ka lo mi ne ru ta vo shi zen bar qui dex tor mal fen gri sto plu wex nar jo vin cel dra")


def vocabulary(rnd: random.Random, rare: int = 3000) -> tuple[list[str], list[float]]:
    """Common words first, then made-up rare ones; Zipf weights (rank^-1.07) as cumulative weights."""
    words = list(dict.fromkeys(COMMON))
    seen = set(words)
    while len(words) < len(COMMON) + rare:
        word = "".join(rnd.choice(SYLLABLES) for _ in range(rnd.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    cum, total = [], 0.0
    for rank in range(1, len(words) + 1):
        total += rank**-1.07
        cum.append(total)
    return words, cum


def rare_word() -> str:
    """A made-up word from the far end of the vocabulary, no prefix of another one (search is by prefix)."""
    words, _ = vocabulary(random.Random(RANDOM_SEED))  # the seed's first draw: the very same vocabulary
    return next(
        w for w in reversed(words) if len(w) >= 7 and not any(o != w and o.startswith(w) for o in words)
    )


# --- database -----------------------------------------------------------------------------------------------


def server_url() -> str:
    """A PostgreSQL URL (any database): DATABASE_URL, else the local server, else a private one in var/."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    from tests.rig import database

    if not os.environ.get("RIG_PRIVATE_SERVERS") and database._pg_connects("127.0.0.1", 5432):
        return LOCAL_SERVER
    return _private_server()


def _private_server() -> str:
    """The test rig's PostgreSQL (its binaries, fsync off), with a data folder that outlives the run."""
    from tests.rig import database, procs
    from tests.rig.ports import LOOPBACK, free_port

    bindir = database._postgres_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL is needed: set DATABASE_URL or install postgresql")
    user = "postgres" if procs.is_root() else None  # initdb and postgres refuse to run as root
    data = PRIVATE_DIR / "data"
    if not (data / "PG_VERSION").exists():
        PRIVATE_DIR.mkdir(parents=True, exist_ok=True)
        if user:
            os.chown(PRIVATE_DIR, *procs.user_ids(user))
        procs.run(
            [
                *(bindir / "initdb", "-D", data, "-U", "postgres", "-A", "trust"),
                *("--no-sync", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"),
            ],
            user=user,
            timeout=120,
        )
    port = free_port()
    proc = procs.spawn(
        "postgres",
        [
            *(bindir / "postgres", "-D", data, "-p", str(port), "-k", PRIVATE_DIR),
            *("-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"),
            *("-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
        ],
        log_path=PRIVATE_DIR / "server.log",
        user=user,
        stop_signal=signal.SIGINT,  # fast shutdown: still a clean one, the data folder stays usable
    )
    proc.wait_until(lambda: database._pg_connects(LOOPBACK, port), 60, "connections")
    return f"postgres://postgres@127.0.0.1:{port}/postgres"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def read_marker(url: str) -> dict | None:
    """The seed marker of the database at `url`, or None (no database, no marker, half-built seed)."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute("SELECT info FROM bench_seed").fetchone()
    except psycopg.Error:
        return None
    return row[0] if row else None


def recreate_database(url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- seeding ------------------------------------------------------------------------------------------------


class Copier:
    """COPY rows into a model's table: each row gives `fields` (attnames); other columns get their default."""

    def __init__(self, cursor, model, fields: list[str], table: str | None = None, extra: tuple = ()):
        from django.db import models

        by_attname = {f.attname: f for f in model._meta.concrete_fields}
        self.cursor = cursor
        self.table = table or model._meta.db_table
        self.columns = [by_attname[name].column for name in fields] + list(extra)
        self.defaults: list = []
        for f in model._meta.concrete_fields:
            if f.attname in fields or f.primary_key:
                continue
            if f.has_default():
                value = f.get_default()
                if isinstance(f, models.JSONField):
                    value = json.dumps(value)
            elif f.null:
                value = None
            elif isinstance(f, models.CharField | models.TextField):
                value = ""
            else:
                raise ValueError(f"{model.__name__}.{f.name} needs a value")
            self.columns.append(f.column)
            self.defaults.append(value)
        self.defaults_tuple = tuple(self.defaults)

    def copy(self, rows: Iterable[tuple]) -> int:
        count = 0
        cols = ", ".join(f'"{c}"' for c in self.columns)
        with self.cursor.copy(f'COPY "{self.table}" ({cols}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row + self.defaults_tuple)
                count += 1
        return count


def _drop_secondary_indexes(cursor, tables: list[str]) -> list[str]:
    """Drop indexes that back no constraint (bulk loads are much faster without them); their definitions."""
    cursor.execute(
        """
        SELECT indexname, indexdef FROM pg_indexes i
        WHERE schemaname = current_schema() AND tablename = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
        """,
        [tables],
    )
    rows = cursor.fetchall()
    for name, _ in rows:
        cursor.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in rows]


def _zipf_index(rnd: random.Random, n: int, skew: float = 2.2) -> int:
    """An index in [0, n) where small indexes are much more likely (a few busy customers, many quiet ones)."""
    return min(int(n * rnd.random() ** skew), n - 1)


def _pick(rnd: random.Random, cum_weights: list[float], items: list):
    return rnd.choices(items, cum_weights=cum_weights)[0]


def _cumulative(weights: Iterable[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def seed(n_tickets: int, n_messages: int) -> dict:
    """Build the whole tenant; returns what the measurement needs (stored in the marker)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Membership, Role, Tenant, User
    from mailboxes.models import Mailbox, OutboundEmail, OutboundKind, OutboundStatus, Visibility
    from tickets import search
    from tickets.models import (
        BusinessHours,
        Contact,
        Customer,
        CustomerDomain,
        Message,
        MessageKind,
        Participant,
        Priority,
        Queue,
        SlaPolicy,
        Status,
        Tag,
        Ticket,
        TicketCounter,
        TicketRead,
    )

    rnd = random.Random(RANDOM_SEED)
    now = timezone.now().replace(microsecond=0)
    settled = now - dt.timedelta(minutes=1)  # nothing changes in the last minute: the live poll finds no news
    words, word_cum = vocabulary(rnd)
    t_start = time.perf_counter()

    def sentence(k_min: int = 6, k_max: int = 18) -> str:
        chosen = rnd.choices(words, cum_weights=word_cum, k=rnd.randint(k_min, k_max))
        return " ".join(chosen).capitalize() + "."

    def paragraph(n_min: int, n_max: int) -> str:
        return " ".join(sentence() for _ in range(rnd.randint(n_min, n_max)))

    with transaction.atomic():
        cursor = connection.cursor()
        with contextlib.suppress(Exception), transaction.atomic():
            # Skips foreign-key triggers during the load (superusers only); the generated rows are consistent.
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")

        # The cast: members, queues, mailboxes, tags, customers, contacts (small: the ORM).
        tenant = Tenant.objects.create(name="Bench Corp", slug=SLUG)
        people = [("owner", Role.OWNER), ("admin", Role.ADMIN)]
        people += [(f"agent{i:02d}", Role.AGENT) for i in range(1, 25)]
        people += [(f"light{i}", Role.LIGHT_AGENT) for i in range(1, 5)]
        users = []
        for i, (local, _) in enumerate(people):
            user = User(
                email=f"{local}@bench.test", name=f"{FIRST[i % len(FIRST)]} {LAST[(i * 7) % len(LAST)]}"
            )
            user.set_unusable_password()
            users.append(user)
        users = User.objects.bulk_create(users)
        memberships = Membership.objects.bulk_create(
            [Membership(tenant=tenant, user=u, role=role) for u, (_, role) in zip(users, people, strict=True)]
        )
        bench_member = next(m for m in memberships if m.user.email == BENCH_USER)
        agents = [m for m in memberships if m.role == Role.AGENT]
        others = [m for m in agents if m is not bench_member]
        assignable = [m.user for m in memberships if m.role != Role.LIGHT_AGENT]

        queues = []
        for name, _, restricted, replies_first in QUEUES:
            q = Queue.objects.create(
                tenant=tenant, name=name, restricted=restricted, replies_first=replies_first
            )
            if name == "VIP":
                q.members.set([bench_member, *others[:5]])
            elif name == "Legal":
                q.members.set(others[5:8])
            else:
                q.members.set(rnd.sample(agents, 10))
            queues.append(q)
        mailboxes = []
        for key, name, _, bench_sees in MAILBOXES:
            box = Mailbox.objects.create(
                tenant=tenant,
                name=name,
                key=key,
                email=f"{key.lower()}@bench.test",
                visibility=Visibility.ALL if bench_sees is None else Visibility.MEMBERS,
                is_default=key == "SUP",
                connected_at=now - dt.timedelta(days=800),
            )
            if bench_sees is not None:
                box.visible_to.set(([bench_member] if bench_sees else []) + others[:6])
            mailboxes.append(box)
        tags = Tag.objects.bulk_create([Tag(tenant=tenant, name=name) for name in TAGS])
        # Service levels, as most helpdesks of this size have them (the lists show each row's next deadline).
        BusinessHours.objects.create(tenant=tenant, start="08:00", end="18:00", timezone="Europe/Berlin")
        SlaPolicy.objects.bulk_create(
            [
                SlaPolicy(
                    tenant=tenant, name="Standard", first_response_minutes=480, resolution_minutes=7200
                ),
                SlaPolicy(
                    tenant=tenant,
                    name="Urgent",
                    priority=Priority.URGENT,
                    first_response_minutes=60,
                    resolution_minutes=480,
                    business_hours_only=False,
                ),
                SlaPolicy(
                    tenant=tenant,
                    name="VIP",
                    queue=queues[6],
                    first_response_minutes=120,
                    resolution_minutes=1440,
                ),
            ]
        )

        n_customers = max(20, n_tickets // 50)
        a, b = len(COMPANY_A), len(COMPANY_B)
        customers = Customer.objects.bulk_create(
            [
                Customer(tenant=tenant, name=f"{COMPANY_A[i % a]} {COMPANY_B[i // a % b]} {i}")
                for i in range(n_customers)
            ],
            batch_size=5000,
        )
        domains = [f"{c.name.split()[0].lower()}{c.pk}.example" for c in customers]
        CustomerDomain.objects.bulk_create(
            [
                CustomerDomain(tenant=tenant, customer=c, domain=d)
                for c, d in zip(customers, domains, strict=True)
            ],
            batch_size=5000,
        )
        n_contacts = max(100, n_tickets * 3 // 10)
        contact_rows = []
        for i in range(n_contacts):
            first, last = rnd.choice(FIRST), rnd.choice(LAST)
            if rnd.random() < 0.7:
                k = _zipf_index(rnd, n_customers, 1.6)
                customer, domain = customers[k], domains[k]
            else:
                customer, domain = None, f"mail{i % 13}.example"
            contact_rows.append(
                Contact(
                    tenant=tenant,
                    email=f"{first.lower()}.{last.lower()}{i}@{domain}",
                    name=f"{first} {last}",
                    customer=customer,
                )
            )
        contacts = Contact.objects.bulk_create(contact_rows, batch_size=5000)
        # Requesters: a skewed pick (some people write a lot), shuffled so the busy ones are spread out.
        contact_order = list(range(n_contacts))
        rnd.shuffle(contact_order)

        # The tickets and everything under them: COPY, secondary indexes rebuilt at the end.
        tables = [
            Ticket._meta.db_table,
            Message._meta.db_table,
            Participant._meta.db_table,
            TicketRead._meta.db_table,
            Ticket.tags.through._meta.db_table,
        ]
        index_definitions = _drop_secondary_indexes(cursor, tables)
        raw = cursor.connection.cursor()  # psycopg's own cursor, for COPY
        ticket_fields = [
            "id",
            "tenant_id",
            "number",
            "title",
            "status",
            "priority",
            "queue_id",
            "mailbox_id",
            "assignee_id",
            "requester_id",
            "customer_id",
            "reply_token",
            "created_at",
            "updated_at",
            "last_message_at",
            "last_inbound_at",
            "last_message_inbound",
            "first_response_at",
            "solved_at",
            "closed_at",
            "close_reason",
        ]
        cursor.execute(
            f'CREATE TEMP TABLE bench_ticket_stage (LIKE "{Ticket._meta.db_table}") ON COMMIT DROP;'
            "ALTER TABLE bench_ticket_stage "
            "ADD COLUMN doc_a text, ADD COLUMN doc_b text, ADD COLUMN doc_c text"
        )
        ticket_copy = Copier(
            raw, Ticket, ticket_fields, table="bench_ticket_stage", extra=("doc_a", "doc_b", "doc_c")
        )
        stage_columns = [
            c for c in ticket_copy.columns if c not in ("doc_a", "doc_b", "doc_c", "search_vector")
        ]
        vector = (
            f"setweight(to_tsvector('{search.CONFIG}'::regconfig, COALESCE(doc_a, '')), 'A') || "
            f"setweight(to_tsvector('{search.CONFIG}'::regconfig, COALESCE(doc_b, '')), 'B') || "
            f"setweight(to_tsvector('{search.CONFIG}'::regconfig, COALESCE(doc_c, '')), 'C')"
        )
        cols = ", ".join(f'"{c}"' for c in stage_columns)
        move_stage = (
            f'INSERT INTO "{Ticket._meta.db_table}" ({cols}, search_vector) '
            f"SELECT {cols}, {vector} FROM bench_ticket_stage; TRUNCATE bench_ticket_stage"
        )
        message_fields = [
            "id",
            "tenant_id",
            "ticket_id",
            "kind",
            "author_id",
            "contact_id",
            "from_addr",
            "from_name",
            "to",
            "cc",
            "subject",
            "text",
            "html",
            "message_id",
            "in_reply_to",
            "threading_signal",
            "sent_date",
            "created_at",
        ]
        message_copy = Copier(raw, Message, message_fields)
        participant_copy = Copier(raw, Participant, ["id", "tenant_id", "ticket_id", "contact_id"])
        read_copy = Copier(raw, TicketRead, ["id", "tenant_id", "ticket_id", "user_id", "read_at"])
        tag_copy = Copier(raw, Ticket.tags.through, ["id", "ticket_id", "tag_id"])

        queue_cum = _cumulative([w for _, w, _, _ in QUEUES] + [NO_QUEUE_WEIGHT])
        queue_items = [*queues, None]
        box_cum = _cumulative([w for _, _, w, _ in MAILBOXES])
        priority_cum = _cumulative([10, 65, 20, 5])
        priorities = [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT]
        count_cum = _cumulative([10, 18, 20, 16, 12, 8, 6, 4, 2, 2, 1, 1])
        tag_count_cum = _cumulative([40, 35, 18, 7])
        tag_cum = _cumulative([1 / (i + 1) for i in range(len(tags))])
        span = dt.timedelta(days=730)
        tenant_id = tenant.pk
        big_index = max(0, n_tickets // 2)  # created about a year ago, still going: the 50-message ticket

        # Pass 1: the plan of every ticket (status, times, counts), so the message total can be exact.
        plans = []
        for i in range(n_tickets):
            created = now - span * (1 - (i + rnd.random()) / n_tickets) - dt.timedelta(minutes=5)
            age = now - created
            r = rnd.random()
            if age < dt.timedelta(days=2):
                status = (
                    Status.NEW
                    if r < 0.4
                    else Status.OPEN
                    if r < 0.75
                    else Status.PENDING
                    if r < 0.9
                    else Status.SOLVED
                )
            elif age < dt.timedelta(days=30):
                status = (
                    Status.NEW
                    if r < 0.05
                    else Status.OPEN
                    if r < 0.35
                    else Status.PENDING
                    if r < 0.55
                    else Status.SOLVED
                    if r < 0.9
                    else Status.CLOSED
                )
            else:
                status = (
                    Status.OPEN
                    if r < 0.03
                    else Status.PENDING
                    if r < 0.05
                    else Status.SOLVED
                    if r < 0.15
                    else Status.CLOSED
                )
            count = rnd.choices(range(1, 13), cum_weights=count_cum)[0]
            if i == big_index:
                status, count = Status.OPEN, BIG_THREAD
            elif status == Status.NEW:
                count = min(count, 2)
            plans.append([created, status, count])
        fixed = [i for i in range(n_tickets) if i != big_index and plans[i][1] != Status.NEW]
        diff = n_messages - sum(p[2] for p in plans)
        while diff and fixed:
            p = plans[rnd.choice(fixed)]
            if diff > 0 and p[2] < 20:
                p[2] += 1
                diff -= 1
            elif diff < 0 and p[2] > 1:
                p[2] -= 1
                diff += 1

        ids = {"message": 0, "participant": 0, "read": 0, "tag": 0}
        big_messages: list[tuple] = []  # the long ticket's messages, written in time order among the others
        totals = {"messages": 0, "open": 0}
        chunk = 5000
        for start in range(0, n_tickets, chunk):
            tickets_rows, message_rows, participant_rows, read_rows, tag_rows = [], [], [], [], []
            for i in range(start, min(start + chunk, n_tickets)):
                created, status, count = plans[i]
                ticket_id, number = i + 1, 1001 + i
                requester = contacts[contact_order[_zipf_index(rnd, n_contacts, 1.8)]]
                queue = _pick(rnd, queue_cum, queue_items)
                box = _pick(rnd, box_cum, mailboxes)
                is_open = status in (Status.NEW, Status.OPEN, Status.PENDING)
                if i == big_index:
                    queue, box, assignee = queues[0], mailboxes[0], bench_member.user
                elif is_open and rnd.random() < 0.3:
                    assignee = None
                else:
                    assignee = rnd.choice(assignable)
                title = rnd.choice(TITLES).format(n=rnd.randint(10000, 99999))
                cc = contacts[rnd.randrange(n_contacts)] if rnd.random() < 0.1 else None
                if cc is requester:
                    cc = None
                # The thread: customer mail first, then replies, notes and the odd automatic mail.
                horizon = (now - created).total_seconds() - 60
                mean_gap = 365 * 86400 / count if i == big_index else 8 * 3600
                offsets, total = [0.0], 0.0
                for _ in range(count - 1):
                    total += rnd.expovariate(1 / mean_gap)
                    offsets.append(total)
                if total > horizon:
                    offsets = [o * horizon / total for o in offsets]
                kinds = [MessageKind.INBOUND]
                for j in range(1, count):
                    prev, r = kinds[-1], rnd.random()
                    if status == Status.NEW:
                        kinds.append(MessageKind.INBOUND)
                    elif prev == MessageKind.INBOUND:
                        kinds.append(MessageKind.OUTBOUND if r < 0.85 else MessageKind.NOTE)
                    else:
                        kinds.append(
                            MessageKind.INBOUND
                            if r < 0.8
                            else MessageKind.NOTE
                            if r < 0.9
                            else MessageKind.AUTOMATIC
                            if r < 0.95
                            else MessageKind.OUTBOUND
                        )
                    if j == count - 1 and status == Status.PENDING:
                        kinds[-1] = MessageKind.OUTBOUND
                agent = assignee or rnd.choice(assignable)
                people = [f"{requester.name} {search._address_words(requester.email)}"]
                if cc is not None:
                    people.append(f"{cc.name} {search._address_words(cc.email)}")
                bodies: list[str] = []
                previous_id = ""
                first_response = last_inbound = last_any = last_email = None
                last_kind = MessageKind.INBOUND
                for j, (offset, kind) in enumerate(zip(offsets, kinds, strict=True)):
                    at = created + dt.timedelta(seconds=int(offset))
                    ids["message"] += 1
                    subject = title if j == 0 else f"Re: {title}"
                    html, signal_name, sent, to, copied = "", "", at, [box.email], []
                    author, contact, from_addr, from_name = (
                        None,
                        requester.pk,
                        requester.email,
                        requester.name,
                    )
                    mid = f"<{rnd.getrandbits(64):016x}@{requester.email.split('@')[1]}>"
                    if kind == MessageKind.INBOUND:
                        text = f"Hello,\n\n{paragraph(2, 7)}\n\nRegards,\n{requester.name}"
                        if rnd.random() < 0.25:
                            html = "".join(f"<p>{line}</p>" for line in text.split("\n\n"))
                        signal_name = "new" if j == 0 else "in-reply-to"
                        copied = [cc.email] if cc and j == 0 else []
                        last_inbound = at
                    elif kind == MessageKind.OUTBOUND:
                        text = (
                            f"Hi {requester.first_name},\n\n{paragraph(1, 5)}\n\nBest regards,\n{agent.name}"
                        )
                        author, contact, from_addr, from_name = agent.pk, None, box.email, box.name
                        to, mid = [requester.email], f"<{rnd.getrandbits(64):016x}@bench.helpdesk>"
                        first_response = first_response or at
                    elif kind == MessageKind.NOTE:
                        text = paragraph(1, 2)
                        author, contact, from_addr, from_name = agent.pk, None, "", ""
                        subject, to, mid, sent = "", [], "", None
                    else:
                        text = f"I am out of the office until next week. {sentence()}"
                        subject = f"Automatic reply: {title}"
                    row = (
                        *(ids["message"], tenant_id, ticket_id, kind, author, contact, from_addr, from_name),
                        *(json.dumps(to), json.dumps(copied), subject, text, html, mid),
                        *(previous_id if j and mid else "", signal_name, sent, at),
                    )
                    (big_messages if i == big_index else message_rows).append(row)
                    if mid:
                        previous_id = mid
                    if from_addr:
                        people.append(f"{from_name} {search._address_words(from_addr)}")
                    bodies.append(f"{subject}\n{text}")
                    last_any = at
                    if kind != MessageKind.NOTE:
                        last_email, last_kind = at, kind
                totals["messages"] += count
                solved_at = closed_at = None
                close_reason = ""
                if status in (Status.SOLVED, Status.CLOSED):
                    solved_at = min(last_any + dt.timedelta(hours=rnd.uniform(0.1, 48)), settled)
                    close_reason = "Answered" if rnd.random() < 0.7 else ""
                    if status == Status.CLOSED:
                        closed_at = min(solved_at + dt.timedelta(days=4), settled)
                updated = max(t for t in (last_any, solved_at, closed_at) if t)
                totals["open"] += is_open
                body_text = "\n".join(bodies)[: search.MAX_BODY_CHARS]
                tickets_rows.append(
                    (
                        ticket_id,
                        tenant_id,
                        number,
                        title,
                        status,
                        _pick(rnd, priority_cum, priorities),
                        queue.pk if queue else None,
                        box.pk,
                        assignee.pk if assignee else None,
                        requester.pk,
                        requester.customer_id,
                        f"{rnd.getrandbits(64):016x}",
                        created,
                        updated,
                        last_email or created,
                        last_inbound,
                        last_kind == MessageKind.INBOUND,
                        first_response,
                        solved_at,
                        closed_at,
                        close_reason,
                        f"{number} #{number} {title}",
                        " ".join(dict.fromkeys(people)),
                        body_text,
                    )
                )
                for contact in filter(None, (requester, cc)):
                    ids["participant"] += 1
                    participant_rows.append((ids["participant"], tenant_id, ticket_id, contact.pk))
                n_tags = rnd.choices(range(4), cum_weights=tag_count_cum)[0]
                for tag in {_pick(rnd, tag_cum, tags) for _ in range(n_tags)}:
                    ids["tag"] += 1
                    tag_rows.append((ids["tag"], ticket_id, tag.pk))
                # Read markers: assignees have read most of their tickets; some activity came after.
                last_activity = last_email or created
                if assignee is not None and rnd.random() < 0.85:
                    ids["read"] += 1
                    fresh = rnd.random() < 0.8
                    read_at = (
                        last_activity + dt.timedelta(minutes=5)
                        if fresh
                        else last_activity - dt.timedelta(hours=1)
                    )
                    read_rows.append((ids["read"], tenant_id, ticket_id, assignee.pk, min(read_at, now)))
                if assignee != bench_member.user and rnd.random() < 0.03:
                    ids["read"] += 1
                    read_rows.append((ids["read"], tenant_id, ticket_id, bench_member.user_id, now))
            # The long ticket's messages go in among the rows of their own time (scattered, as in real life).
            chunk_end = plans[min(start + chunk, n_tickets) - 1][0]
            while big_messages and big_messages[0][-1] <= chunk_end and start > big_index:
                message_rows.append(big_messages.pop(0))
            ticket_copy.copy(tickets_rows)
            cursor.execute(move_stage)
            message_copy.copy(message_rows)
            participant_copy.copy(participant_rows)
            read_copy.copy(read_rows)
            tag_copy.copy(tag_rows)
            print(
                f"  seeded {min(start + chunk, n_tickets)} tickets ({time.perf_counter() - t_start:.0f}s)",
                flush=True,
            )
        message_copy.copy(big_messages)

        t_index = time.perf_counter()
        for definition in index_definitions:
            cursor.execute(definition)
        print(
            f"  rebuilt {len(index_definitions)} indexes in {time.perf_counter() - t_index:.0f}s", flush=True
        )
        for model in (Ticket, Message, Participant, TicketRead, Ticket.tags.through):
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                f'COALESCE((SELECT MAX(id) FROM "{table}"), 1))'
            )
        TicketCounter.objects.create(tenant=tenant, last_number=1000 + n_tickets)
        big = Ticket.objects.get(tenant=tenant, number=1001 + big_index)
        OutboundEmail.objects.bulk_create(
            [
                OutboundEmail(
                    tenant=tenant,
                    mailbox=mailboxes[0],
                    kind=OutboundKind.REPLY,
                    ticket=big,
                    ticket_message=m,
                    from_addr=m.from_addr,
                    to=m.to,
                    subject=m.subject,
                    message_id=m.message_id,
                    status=OutboundStatus.SENT,
                    attempts=1,
                    smtp_code=250,
                    smtp_text="2.0.0 Ok: queued",
                    text=m.text,
                    created_by_id=m.author_id,
                    sent_at=m.created_at,
                )
                for m in Message.objects.filter(ticket=big, kind=MessageKind.OUTBOUND)
            ]
        )
        _pipeline_rows(big, mailboxes[0])
        info = {
            "version": SEED_VERSION,
            "tickets": n_tickets,
            "messages": totals["messages"],
            "open": totals["open"],
            "user": BENCH_USER,
            "tenant": SLUG,
            "big_ticket": big.number,
            "seeded_at": now.isoformat(),
            "seconds": 0,
        }
        with connection.cursor() as c:
            c.execute("CREATE TABLE bench_seed (info jsonb NOT NULL)")
    # Outside the transaction: VACUUM (visibility map for index-only scans) and fresh statistics.
    t_vacuum = time.perf_counter()
    with connection.cursor() as c:
        c.execute("VACUUM ANALYZE")
    print(f"  VACUUM ANALYZE in {time.perf_counter() - t_vacuum:.0f}s", flush=True)
    _check_search_vectors(tenant, big.pk)
    info["seconds"] = round(time.perf_counter() - t_start, 1)
    with connection.cursor() as c:
        c.execute("INSERT INTO bench_seed (info) VALUES (%s)", [json.dumps(info)])
    return info


def _pipeline_rows(ticket, mailbox) -> None:
    """What intake leaves behind for the long ticket's mail: an inbound ledger row with its processing trace
    for each received message (the ticket page shows it) and attachments on every fourth of them."""
    from mailboxes.models import InboundMessage, InboundStatus
    from tickets.models import Attachment, Message, MessageKind

    received = list(
        Message.objects.filter(ticket=ticket, kind__in=[MessageKind.INBOUND, MessageKind.AUTOMATIC]).order_by(
            "created_at", "id"
        )
    )
    steps = [
        ("load", "18211 bytes from storage"),
        ("parse", "0 attachments, 0 defects"),
        ("bodies", ""),
        ("thread", "in-reply-to"),
        ("write", f"ticket #{ticket.number}, reply"),
        ("auto-reply", "not sent: the sender wrote in the last 4 hours"),
    ]
    ledger = InboundMessage.objects.bulk_create(
        [
            InboundMessage(
                tenant_id=ticket.tenant_id,
                mailbox=mailbox,
                folder="INBOX",
                uidvalidity=1,
                uid=i + 1,
                message_id=m.message_id,
                sha256=f"{ticket.pk:032x}{i:032x}",
                raw_key=f"raw/{ticket.pk:032x}{i:032x}",
                size=len(m.text) + 2400,
                sender=m.from_addr,
                subject=m.subject,
                status=InboundStatus.PROCESSED,
                outcome="new" if i == 0 else "automatic" if m.kind == MessageKind.AUTOMATIC else "reply",
                ticket=ticket,
                trace=[{"step": step, "note": note, "ms": 1.7 + k} for k, (step, note) in enumerate(steps)],
                attempts=1,
                after_import_done=True,
                received_at=m.created_at,
                processed_at=m.created_at,
            )
            for i, m in enumerate(received)
        ]
    )
    for message, row in zip(received, ledger, strict=True):
        message.inbound = row
    Message.objects.bulk_update(received, ["inbound"])
    Attachment.objects.bulk_create(
        [
            Attachment(
                tenant_id=ticket.tenant_id,
                message=m,
                filename=f"{name}-{i}.{ext}",
                content_type=content_type,
                size=20_000 + 5_000 * i,
                sha256=f"{m.pk:032x}{i:032x}",
                storage_key=f"attachments/{m.pk:032x}{i:032x}",
            )
            for i, m in enumerate(received[::4])
            for name, ext, content_type in [
                ("invoice", "pdf", "application/pdf"),
                ("photo", "jpg", "image/jpeg"),
            ][: 1 + i % 2]
        ]
    )


def _check_search_vectors(tenant, long_ticket_id: int) -> None:
    """The seeded vectors must equal what tickets.search.reindex() writes (the long ticket and 4 others)."""
    from tickets import search
    from tickets.models import Ticket

    sample = [long_ticket_id]
    sample += list(Ticket.objects.filter(tenant=tenant).order_by("?").values_list("pk", flat=True)[:4])
    for pk in sample:
        ticket = Ticket.objects.select_related("requester").get(pk=pk)
        before = _vector_text(pk)
        search.reindex(ticket)
        if _vector_text(pk) != before:
            print(f"  warning: the seeded search vector of #{ticket.number} differs from reindex()'s")


def _vector_text(pk: int) -> str:
    from django.db import connection

    with connection.cursor() as c:
        c.execute("SELECT search_vector::text FROM tickets_ticket WHERE id = %s", [pk])
        return c.fetchone()[0]


# --- measuring ----------------------------------------------------------------------------------------------


def deep_cursor(membership, view: str, queue, deep_page: int) -> tuple[str | None, int]:
    """The `after` cursor of page `deep_page` of a list (or of its last page); (None, 1) for one page."""
    from tickets import lists

    qs = lists.list_queryset(membership, view=view, queue=queue)
    keys = lists.SORTS[lists.DEFAULT_SORT].keys
    if queue is not None and queue.replies_first:
        qs, keys = qs.replies_first(), lists.REPLIES_FIRST
    pages = math.ceil(qs.count() / PAGE_SIZE)
    page = min(deep_page, pages)
    if page <= 1:
        return None, 1
    row = qs.order_by(*lists.order_by(keys))[(page - 1) * PAGE_SIZE - 1]
    return lists.encode_cursor(row, keys), page


def build_pages(info: dict, membership, deep_page: int) -> dict[str, str]:
    """{page name: URL} of everything measured."""
    from django.db.models import Count
    from django.urls import reverse
    from django.utils import timezone

    from tickets.access import visible_queue_list
    from tickets.models import Customer, Tag

    slug = info["tenant"]

    def url(name: str, *args, query: dict | list | None = None) -> str:
        return reverse(f"tickets:{name}", args=[slug, *args]) + (f"?{urlencode(query)}" if query else "")

    pages: dict[str, str] = {}
    for view in ("mine", "unassigned", "open", "pending", "solved", "all"):
        pages[f"view_{view}"] = url("list", view)
        cursor, page = deep_cursor(membership, view, None, deep_page)
        if cursor:
            pages[f"view_{view}_deep"] = url("list", view, query={"after": cursor})
            print(f"  view_{view}_deep is page {page}")
    for queue in visible_queue_list(membership):
        key = f"queue_{queue.name.lower()}"
        pages[key] = url("queue", queue.pk)
        cursor, page = deep_cursor(membership, "open", queue, deep_page)
        if cursor:
            pages[f"{key}_deep"] = url("queue", queue.pk, query={"after": cursor})
            print(f"  {key}_deep is page {page}")
    tag_ids = list(
        Tag.objects.filter(tenant=membership.tenant, name__in=["refund", "invoice", "login"]).values_list(
            "pk", flat=True
        )
    )
    pages["filtered"] = url(
        "list",
        "all",
        query=[
            ("status", "new"),
            ("status", "open"),
            ("status", "pending"),
            ("priority", "3"),
            ("priority", "4"),
            *[("tag", str(t)) for t in tag_ids],
            ("assignee", "0"),
            ("assignee", str(membership.user_id)),
            ("unread", "1"),
        ],
    )
    busiest = (
        Customer.objects.filter(tenant=membership.tenant)
        .annotate(n=Count("tickets"))
        .order_by("-n")
        .values_list("pk", flat=True)
        .first()
    )
    year_ago = (timezone.now() - dt.timedelta(days=365)).date()
    pages["filtered_customer"] = url(
        "list",
        "all",
        query={"customer": busiest, "created_from": year_ago.isoformat(), "sort": "newest"},
    )
    pages["search"] = url("list", "all", query={"q": "invoice payment"})  # each in a few % of tickets
    pages["search_common"] = url("list", "all", query={"q": "order"})  # in about half of them
    pages["search_rare"] = url("list", "all", query={"q": rare_word()})  # in a few dozen
    pages["ticket_50_messages"] = url("detail", info["big_ticket"])
    pages["live_poll"] = url("changes", query={"view": "open", "since": "{since}"})
    return pages


class QueryLog:
    """Every query of a block with its time (django's execute_wrapper)."""

    def __init__(self):
        self.queries: list[tuple[float, str, object]] = []

    def __call__(self, execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append(((time.perf_counter() - t0) * 1000, sql, params))


def fill(url: str) -> str:
    """Per-request values: the poll asks about changes of the last few seconds."""
    from django.utils import timezone

    since = (timezone.now() - dt.timedelta(seconds=3)).isoformat()
    return url.replace("%7Bsince%7D", quote(since, safe=""))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def measure(args, info: dict) -> dict:
    from django.conf import settings
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client

    from accounts.models import Membership

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    membership = Membership.objects.select_related("user", "tenant").get(
        tenant__slug=info["tenant"], user__email=info["user"]
    )
    client = Client()
    client.force_login(membership.user)
    print("preparing the pages (deep cursors)...")
    pages = build_pages(info, membership, args.deep_page)
    if args.only:
        pages = {k: v for k, v in pages.items() if any(o in k for o in args.only)}

    def get(name: str, url: str):
        if not args.cached_counters:
            cache.clear()
        target = fill(url)
        c0, t0 = time.process_time(), time.perf_counter()
        response = client.get(target)
        elapsed, cpu_ms = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
        if response.status_code not in (200, 204):
            raise SystemExit(f"{name}: {response.status_code} for {target}")
        return elapsed, cpu_ms

    print(f"warming up, then {args.requests} rounds over {len(pages)} pages...", flush=True)
    for _ in range(args.warmup):
        for name, url in pages.items():
            get(name, url)
    # Rounds over all pages rather than page after page: a burst of other work on the machine then slows
    # every page a little instead of one page a lot.
    times: dict[str, list[float]] = {name: [] for name in pages}
    cpu: dict[str, list[float]] = {name: [] for name in pages}
    for _ in range(args.requests):
        for name, url in pages.items():
            elapsed, cpu_ms = get(name, url)
            times[name].append(elapsed)
            cpu[name].append(cpu_ms)
    results: dict[str, dict] = {}
    # cpu: this process's CPU time per request (Python), db: the queries' time in one more request. On a
    # machine busy with other work, wall-clock time grows; these two show what the page itself costs.
    print(f"{'page':<28} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'cpu ms':>8} {'queries':>8} {'db ms':>8}")
    for name, url in pages.items():
        if not args.cached_counters:
            cache.clear()
        log = QueryLog()
        with connection.execute_wrapper(log):
            client.get(fill(url))
        db_ms = sum(q[0] for q in log.queries)
        results[name] = {
            "p50_ms": round(statistics.median(times[name]), 1),
            "p95_ms": round(percentile(times[name], 95), 1),
        }
        print(
            f"{name:<28} {results[name]['p50_ms']:8.1f} {results[name]['p95_ms']:8.1f} "
            f"{max(times[name]):8.1f} {statistics.median(cpu[name]):8.1f} {len(log.queries):8d} {db_ms:8.1f}",
            flush=True,
        )
        if args.queries:
            for ms, sql, _ in log.queries:
                print(f"      {ms:7.2f} ms  {' '.join(sql.split())[:400]}")
        if args.explain and args.explain == name:
            explain(log)
        if args.profile and args.profile == name:
            profile = cProfile.Profile()
            for _ in range(int(os.environ.get("BENCH_PROFILE_RUNS", "1"))):
                if not args.cached_counters:
                    cache.clear()
                profile.runcall(client.get, fill(url))
            pstats.Stats(profile).sort_stats(os.environ.get("BENCH_PROFILE_SORT", "cumulative")).print_stats(
                int(os.environ.get("BENCH_PROFILE_LINES", "40"))
            )
    return results


def explain(log: QueryLog, threshold_ms: float = 2.0) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of every query of the page that took longer than `threshold_ms`."""
    from django.db import connection

    for ms, sql, params in log.queries:
        if ms < threshold_ms or not sql.lstrip().upper().startswith("SELECT"):
            continue
        with connection.cursor() as c:
            c.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = "\n".join(row[0] for row in c.fetchall())
        print(f"\n--- {ms:.1f} ms: {' '.join(sql.split())[:1500]}\n{plan}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--messages", type=int, help="Messages in all (default: 4 per ticket).")
    parser.add_argument("--reseed", action="store_true", help="Build the seed again even if it matches.")
    parser.add_argument("--drop", action="store_true", help="Delete the seeded database and stop.")
    parser.add_argument("--requests", type=int, default=30, help="Timed requests per page.")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed requests per page first.")
    parser.add_argument("--deep-page", type=int, default=200, help="Which page is 'deep' (or the last one).")
    parser.add_argument("--only", type=lambda s: s.split(","), help="Pages whose name contains one of these.")
    parser.add_argument("--cached-counters", action="store_true", help="Keep the sidebar counters' cache.")
    parser.add_argument("--queries", action="store_true", help="List each page's queries with their times.")
    parser.add_argument("--explain", metavar="PAGE", help="EXPLAIN ANALYZE the slow queries of this page.")
    parser.add_argument("--profile", metavar="PAGE", help="cProfile one request of this page.")
    args = parser.parse_args()
    n_messages = args.messages or args.tickets * 4
    if n_messages < args.tickets + BIG_THREAD:
        raise SystemExit("--messages must be at least --tickets + 50")

    from tests.rig.procs import stop_all

    try:
        url = with_database(server_url(), f"helpdesk_bench_web_{args.tickets}")
        if args.drop:
            drop_database(url)
            print(f"dropped {urlsplit(url).path.lstrip('/')}")
            return
        marker = None if args.reseed else read_marker(url)
        wanted = {"version": SEED_VERSION, "tickets": args.tickets, "messages": n_messages}
        reuse = marker is not None and all(marker.get(k) == v for k, v in wanted.items())
        if not reuse:
            recreate_database(url)
        os.environ["DATABASE_URL"] = url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        if reuse:
            info = marker
            print(f"reusing {urlsplit(url).path.lstrip('/')}: seeded {info['seeded_at']}")
        else:
            name = urlsplit(url).path.lstrip("/")
            print(f"seeding {args.tickets} tickets and {n_messages} messages into {name}")
            info = seed(args.tickets, n_messages)
            print(f"seeded in {info['seconds']}s")
        print(
            f"{info['tickets']} tickets ({info['open']} open), {info['messages']} messages; as {info['user']}"
        )
        results = measure(args, info)
        slow = [name for name, r in results.items() if r["p95_ms"] >= 100]
        print(f"pages with p95 >= 100 ms: {', '.join(slow) if slow else 'none'}")
        print(json.dumps(results))
    finally:
        from django.db import connections

        with contextlib.suppress(Exception):
            connections.close_all()
        stop_all()


if __name__ == "__main__":
    main()
