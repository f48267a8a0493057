"""The thread written in Python (tickets.thread_html) is the markup the templates wrote, byte for byte.

The thread used to be a template include per message; tests/tickets/thread_reference/ keeps those templates
(`_message.html`, `_message_body.html`; a message's trace is templates/tickets/_trace.html, loaded when
opened, which the quarantine page uses too). A change to the thread's markup is made in thread_html.py and
in the reference, so this test keeps comparing the two: messages of every kind, hostile text everywhere, each kind of viewer,
another language and time zone.
"""

import datetime as dt
import itertools
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.db.models import Prefetch, prefetch_related_objects
from django.template import Context, Engine, engines
from django.urls import reverse
from django.utils import dateformat, timezone, translation
from django.utils.formats import localize

from helpdesk.date_text import DateText
from mailboxes.models import InboundMessage, OutboundEmail
from tests.tickets import factories as f
from tickets import thread
from tickets.models import Attachment, Message, MessageKind
from tickets.thread_html import thread_html

pytestmark = pytest.mark.django_db

REFERENCE = Path(__file__).resolve().parent / "thread_reference"
EVIL = """<script>alert("x")</script>'"&amp;"""
TOKEN = "tok&<en>"
PREFIX = "/acme/attachments/"


def reference_engine() -> Engine:
    """The project's template engine with the reference templates in front."""
    project = engines["django"].engine
    return Engine(
        dirs=[str(REFERENCE), *project.dirs],
        libraries=project.libraries,
        builtins=["accounts.templatetags.tenant_urls"],
    )


LOOP = """{% for m in entries %}
          {% include "tickets/_message.html" %}
        {% endfor %}"""


def reference(entries, ticket, *, editable: bool, is_admin: bool) -> str:
    # The templates read `m.attachments.all`, as prefetched (by id) when they were in use.
    prefetch_related_objects(entries, Prefetch("attachments", queryset=Attachment.objects.order_by("id")))
    context = {
        "entries": entries,
        "ticket": ticket,
        "editable": editable,
        "request": SimpleNamespace(membership=SimpleNamespace(is_admin=is_admin)),
        "csrf_token": TOKEN,
        "attachment_prefix": PREFIX,
    }
    return reference_engine().from_string(LOOP).render(Context(context))


def written(entries, ticket, *, editable: bool, is_admin: bool) -> str:
    return thread_html(
        entries,
        ticket_title=ticket.title,
        editable=editable,
        is_admin=is_admin,
        csrf_token=TOKEN,
        attachment_prefix=PREFIX,
    )


def outbound(message: Message, status: str, **fields) -> None:
    OutboundEmail.objects.create(
        tenant=message.tenant,
        kind="reply",
        ticket=message.ticket,
        ticket_message=message,
        from_addr="support@acme.test",
        to=["x@y.test"],
        message_id=f"<{message.pk}-{status}@acme.test>",
        status=status,
        **fields,
    )


def inbound(message: Message, **fields) -> None:
    row = InboundMessage.objects.create(
        tenant=message.tenant, sha256="0" * 64, raw_key=f"raw/{message.pk}.eml", **fields
    )
    Message.objects.filter(pk=message.pk).update(inbound=row)


@pytest.fixture
def busy_ticket(tenant, agent):
    """A ticket with one message of every kind and shape the thread shows."""
    box = f.mailbox(tenant, email="help@acme.test")
    requester = f.contact(tenant, "jane@example.test", name=EVIL)
    t = f.ticket(tenant, f"Refund {EVIL}", requester=requester, body=f"See https://x.test/a?b=1&c=2 {EVIL}")
    t.mailbox = box
    t.save()
    first = t.messages.get()
    at = dt.datetime(2025, 3, 4, 0, 0, tzinfo=dt.UTC)  # midnight, then noon, then all sorts of times
    step = itertools.count()

    def when():
        n = next(step)
        return at + dt.timedelta(hours=12 * n, minutes=37 * n % 60 if n > 1 else 0)

    Message.objects.filter(pk=first.pk).update(
        created_at=when(), threading_signal="in-reply-to", cc=["a@b.test", {"name": EVIL, "email": "c@d"}]
    )
    inbound(
        first,
        mailbox=box,
        folder=f"INBOX/{EVIL}",
        uid=12345,
        outcome="",
        is_history=True,
        trace=[
            {"step": "load", "ms": 1.25, "note": EVIL},
            {"step": "parse", "ms": 0},
            {"step": "bodies", "ms": 3},
            {"step": "round", "ms": 0.05, "note": 7},
            {"step": "minus", "ms": -0.04},
            {"step": "text", "ms": "2.35"},
            {"ms": 1.0},
            {"step": None},
            "not an object",
        ],
    )
    traced = f.message(t, text="No trace yet", at=when(), threading_signal="mystery-signal", cc=["x@y"])
    inbound(traced, outcome="reply", trace=[])
    f.message(t, text="Signal only", at=when(), threading_signal="references", subject="Other subject")
    f.message(t, text="Nothing", at=when(), from_name="", from_addr="", to=[], subject="")
    f.message(t, text="Name only", at=when(), from_name="Only Name", from_addr="")
    html_remote = f.message(t, html='<p>Hi</p><img src="https://tracker.test/p.gif">', at=when())
    f.attachment(html_remote, f'"><img src=x onerror=alert(1)>{EVIL}.pdf', b"x" * 2048)
    f.attachment(html_remote, "logo.png", f.PNG, "image/png", content_id="<logo>", inline=True)
    big = f.attachment(html_remote, "big.bin", b"y", "application/octet-stream")
    Attachment.objects.filter(pk=big.pk).update(size=3 << 20)
    only_inline = f.message(t, html="<p>No remote images</p>", at=when())
    f.attachment(only_inline, "inline.png", f.PNG, "image/png", content_id="<i>", inline=True)
    empty = f.message(t, text="", at=when())
    f.attachment(empty, "empty.txt", b"", "text/plain")
    for status, fields in [
        ("sent", {"smtp_text": "250 Ok"}),
        ("queued", {}),
        ("deferred", {"smtp_text": f"451 {EVIL}"}),
        ("failed", {"error_message": f"Refused {EVIL}", "error_advice": "Check it."}),
        ("uncertain", {}),
    ]:
        reply = f.message(
            t,
            kind=MessageKind.OUTBOUND,
            text=f"Answer ({status})",
            author=agent,
            at=when(),
            cc=["cc@x.test"] if status == "sent" else [],
            bcc=["bcc@x.test"] if status in ("sent", "failed") else [],
        )
        outbound(reply, status, **fields)
    f.message(
        t, kind=MessageKind.OUTBOUND, text="No author", from_name=EVIL, from_addr="s@acme.test", at=when()
    )
    f.message(t, kind=MessageKind.OUTBOUND, text="Nobody", from_name="", from_addr="", at=when())
    f.message(t, kind=MessageKind.NOTE, text=f"Note {EVIL}", author=agent, subject="Note subject", at=when())
    f.message(t, kind=MessageKind.NOTE, text="Anonymous note", at=when())
    f.message(
        t, kind=MessageKind.AUTOMATIC, text="Out of office", subject=EVIL, from_addr="ooo@x.test", at=when()
    )
    f.message(t, kind=MessageKind.AUTOMATIC, text="Bounce", from_name="", from_addr="", at=when())
    return t


VIEWERS = [(True, True), (True, False), (False, False)]  # (editable, admin): admin, agent, light agent


@pytest.mark.parametrize(("editable", "is_admin"), VIEWERS)
def test_the_thread_is_the_templates_markup(busy_ticket, editable, is_admin):
    entries = thread.for_display(busy_ticket)
    assert len(entries) == 19
    expected = reference(entries, busy_ticket, editable=editable, is_admin=is_admin)
    assert written(entries, busy_ticket, editable=editable, is_admin=is_admin) == expected
    assert "<script>" not in expected and "&lt;script&gt;" in expected


@pytest.mark.parametrize(("editable", "is_admin"), VIEWERS)
def test_a_single_message_has_no_split_action(busy_ticket, editable, is_admin):
    entries = thread.for_display(busy_ticket)[:1]
    expected = reference(entries, busy_ticket, editable=editable, is_admin=is_admin)
    assert written(entries, busy_ticket, editable=editable, is_admin=is_admin) == expected
    assert "Split into new ticket" not in expected


def test_the_thread_follows_the_language_and_time_zone(busy_ticket):
    entries = thread.for_display(busy_ticket)
    with translation.override("de"), timezone.override("America/St_Johns"):
        expected = reference(entries, busy_ticket, editable=True, is_admin=True)
        assert written(entries, busy_ticket, editable=True, is_admin=True) == expected
    assert "-02:30" in expected or "-03:30" in expected


def test_the_ticket_page_shows_the_thread(client, busy_ticket, admin):
    client.force_login(admin)
    page = client.get(reverse("tickets:detail", args=["acme", busy_ticket.number])).content.decode()
    assert page.count("data-message>") == len(thread.for_display(busy_ticket))
    assert 'name="csrfmiddlewaretoken"' in page.split('id="thread"')[1].split("Split into new ticket")[0]


def test_an_empty_thread_says_so(client, tenant, admin):
    t = f.ticket(tenant, body=None)
    client.force_login(admin)
    page = client.get(reverse("tickets:detail", args=["acme", t.number])).content.decode()
    assert '<p class="empty-inline">This ticket has no messages.</p>' in page


# --- the pieces: dates and trace timings as Django's filters write them

FORMAT_LETTERS = "aAbcdDeEfFgGhHiIjlLmMnNoOPrsStTUuwWyYzZ"


@pytest.mark.parametrize("language", ["en", "de", "fr"])
def test_dates_are_django_dates(language):
    rnd = random.Random(4)
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    values = [start + dt.timedelta(minutes=rnd.randrange(3 * 365 * 24 * 60)) for _ in range(300)]
    values += [start.replace(hour=0, minute=0), start.replace(hour=12, minute=0), start.replace(hour=12)]
    formats = ["DATETIME_FORMAT", "M j, H:i", "j M Y H:i:s", "c", r"\j\a j", *FORMAT_LETTERS]
    with translation.override(language), timezone.override("Europe/Berlin"):
        dates = DateText()
        for value in values:
            local = timezone.localtime(value)
            assert dates.local(value) == local
            assert dates.text(value) == localize(local)  # {{ value }}
            for fmt in formats:
                django_fmt = dates.datetime_format if fmt == "DATETIME_FORMAT" else fmt
                assert dates.format(local, django_fmt) == dateformat.format(local, django_fmt), fmt


def test_authors_come_from_the_list_given(busy_ticket, agent, django_assert_num_queries):
    with django_assert_num_queries(4):  # messages, files, deliveries, authors
        loaded = thread.messages(busy_ticket)
    with django_assert_num_queries(3):
        known = thread.messages(busy_ticket, users={agent.pk: agent})
    assert [(m.pk, m.author) for m in known] == [(m.pk, m.author) for m in loaded]
    assert [m.author for m in known if m.author] and all(m.author is agent for m in known if m.author)


def test_a_messages_trace_loads_when_opened(client, busy_ticket, agent, outsider):
    """The thread links each received mail's trace; the trace itself is a fragment for members only."""
    client.force_login(agent)
    page = client.get(reverse("tickets:detail", args=["acme", busy_ticket.number])).content.decode()
    received = [m for m in thread.for_display(busy_ticket) if m.inbound_id]
    assert received and "Processing trace" not in page
    for m in received:
        assert f'hx-get="{m.url}trace/" hx-trigger="toggle once"' in page
    trace = client.get(f"{received[0].url}trace/")
    assert trace.status_code == 200 and "Processing trace" in trace.content.decode()
    noted = [m for m in thread.for_display(busy_ticket) if not m.inbound_id]
    assert noted and client.get(f"{noted[0].url}trace/").status_code == 404
    client.force_login(outsider)
    assert client.get(f"{received[0].url}trace/").status_code == 404
