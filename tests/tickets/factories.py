"""Small factories for ticket tests: mailboxes, queues, contacts, tickets, messages and stored attachments."""

import hashlib
import itertools
from datetime import timedelta

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from accounts.models import Membership, Tenant
from mailboxes.models import InboundMessage, Mailbox, Visibility
from tickets import search
from tickets.models import (
    Attachment,
    Contact,
    Customer,
    Message,
    MessageKind,
    Participant,
    Queue,
    Tag,
    Ticket,
    TicketCounter,
)

_seq = itertools.count(1)

# A 1x1 transparent PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def mailbox(
    tenant: Tenant, key: str = "SUP", *, members: list[Membership] | None = None, **fields
) -> Mailbox:
    """A mailbox; with `members` it is visible to those members only."""
    n = next(_seq)
    box = Mailbox.objects.create(
        tenant=tenant,
        name=fields.pop("name", f"Support {key}"),
        key=key,
        email=fields.pop("email", f"{key.lower()}{n}@{tenant.slug}.test"),
        visibility=Visibility.MEMBERS if members is not None else Visibility.ALL,
        **fields,
    )
    if members:
        box.visible_to.set(members)
    return box


def queue(tenant: Tenant, name: str = "Support", *, restricted: bool = False, members=()) -> Queue:
    q = Queue.objects.create(tenant=tenant, name=name, restricted=restricted)
    if members:
        q.members.set(members)
    return q


def contact(
    tenant: Tenant, email: str | None = None, name: str = "", customer: Customer | None = None
) -> Contact:
    email = email or f"customer{next(_seq)}@example.test"
    return Contact.objects.create(tenant=tenant, email=email, name=name, customer=customer)


def customer(tenant: Tenant, name: str | None = None) -> Customer:
    return Customer.objects.create(tenant=tenant, name=name or f"Customer {next(_seq)}")


def tag(tenant: Tenant, name: str) -> Tag:
    return Tag.objects.get_or_create(tenant=tenant, name=name)[0]


def ticket(
    tenant: Tenant,
    title: str = "Printer on fire",
    *,
    requester: Contact | None = None,
    body: str | None = "Hello, my printer is on fire. Please help.",
    html: str = "",
    at=None,
    tags=(),
    reindex: bool = True,
    **fields,
) -> Ticket:
    """A ticket with its first inbound message (unless body is None), indexed for search."""
    when = at or timezone.now()
    requester = requester if requester is not None else contact(tenant)
    t = Ticket.objects.create(
        tenant=tenant,
        number=TicketCounter.next_number(tenant),
        title=title,
        requester=requester,
        customer=fields.pop("customer", requester.customer if requester else None),
        created_at=when,
        updated_at=when,
        last_message_at=when,
        last_inbound_at=when,
        **fields,
    )
    if requester is not None:
        Participant.objects.create(tenant=tenant, ticket=t, contact=requester)
    if tags:
        t.tags.set(tags)
    if body is not None or html:
        message(t, text=body or "", html=html, at=when)
    if reindex:
        search.reindex(t)
    return t


def message(
    t: Ticket,
    *,
    kind: str = MessageKind.INBOUND,
    text: str = "",
    html: str = "",
    subject: str | None = None,
    from_name: str | None = None,
    from_addr: str | None = None,
    author=None,
    at=None,
    raw: bytes | None = None,
    **fields,
) -> Message:
    """A thread entry; an inbound one comes from the requester. `raw` stores an InboundMessage original."""
    when = at or timezone.now()
    inbound = None
    if raw is not None:
        key = f"raw/{hashlib.sha256(raw).hexdigest()}.eml"
        if not default_storage.exists(key):
            default_storage.save(key, ContentFile(raw))
        inbound = InboundMessage.objects.create(
            tenant=t.tenant,
            mailbox=t.mailbox,
            sha256=hashlib.sha256(raw).hexdigest(),
            raw_key=key,
            size=len(raw),
        )
    requester = t.requester
    is_inbound = kind in (MessageKind.INBOUND, MessageKind.AUTOMATIC)
    return Message.objects.create(
        tenant=t.tenant,
        ticket=t,
        kind=kind,
        author=author,
        contact=requester if kind == MessageKind.INBOUND else None,
        from_name=from_name
        if from_name is not None
        else (requester.name if requester and is_inbound else ""),
        from_addr=from_addr
        if from_addr is not None
        else (requester.email if requester and is_inbound else ""),
        to=fields.pop("to", [t.mailbox.email] if t.mailbox else ["support@acme.test"]),
        subject=subject if subject is not None else t.title,
        text=text,
        html=html,
        inbound=inbound,
        created_at=when,
        **fields,
    )


def attachment(
    msg: Message,
    filename: str = "invoice.pdf",
    content: bytes = b"%PDF-1.4 fake",
    content_type: str = "application/pdf",
    *,
    content_id: str = "",
    inline: bool = False,
) -> Attachment:
    """An attachment stored in default_storage under its content hash."""
    digest = hashlib.sha256(content).hexdigest()
    key = f"attachments/{digest}"
    if not default_storage.exists(key):
        default_storage.save(key, ContentFile(content))
    return Attachment.objects.create(
        tenant=msg.tenant,
        message=msg,
        filename=filename,
        content_type=content_type,
        size=len(content),
        sha256=digest,
        storage_key=key,
        content_id=content_id,
        is_inline=inline,
    )


def many_tickets(tenant: Tenant, n: int, *, start=None, step=timedelta(minutes=1), **fields) -> list[Ticket]:
    """`n` tickets with distinct, increasing activity times (oldest first)."""
    start = start or timezone.now() - step * (n + 1)
    return [ticket(tenant, f"Question {i}", at=start + step * i, **fields) for i in range(n)]


DEMO_PEOPLE = [
    ("Jane Cooper", "jane.cooper@northwind.test"),
    ("Marcus Lee", "marcus@lee-design.test"),
    ("Priya Patel", "priya.patel@contoso.test"),
    ("Tom Becker", "t.becker@fabrikam.test"),
    ("Sofia Rossi", "sofia@rossi.test"),
    ("Liam O'Brien", "liam.obrien@northwind.test"),
    ("Emma Schmidt", "emma.schmidt@contoso.test"),
    ("Noah Kim", "noah@kimco.test"),
]
DEMO_SUBJECTS = [
    "Invoice #4471 charged twice",
    "Can't log in after password reset",
    "Export to CSV is missing the date column",
    "Request: add SSO for our team",
    "Order 88213 hasn't shipped yet",
    "Refund for cancelled subscription",
    "Webhook deliveries failing with 502",
    "How do I change the billing email?",
    "Dark mode makes charts unreadable",
    "Upgrade to annual plan",
    "API rate limit too low for our import",
    "Wrong VAT number on receipts",
    "Mobile app crashes when opening attachments",
    "Feature question: shared inboxes",
    "Data deletion request (GDPR)",
]


def demo_inbox(tenant: Tenant, agents: list, n: int = 30, *, read_by=()) -> list[Ticket]:
    """A believable inbox: three mailboxes, two queues, customers, tags, mixed states and ages; most tickets
    already read by the users in `read_by`."""
    from tickets import lists
    from tickets.models import Priority, Status

    boxes = [
        mailbox(tenant, "SUP", name="Support"),
        mailbox(tenant, "BIL", name="Billing"),
        mailbox(tenant, "SAL", name="Sales"),
    ]
    queues = [queue(tenant, "Support"), queue(tenant, "Billing")]
    northwind = customer(tenant, "Northwind Traders")
    contoso = customer(tenant, "Contoso")
    companies = {"northwind.test": northwind, "contoso.test": contoso}
    people = [contact(tenant, email, name, companies.get(email.split("@")[1])) for name, email in DEMO_PEOPLE]
    tags = [tag(tenant, "vip"), tag(tenant, "bug"), tag(tenant, "refund")]
    statuses = [Status.NEW, Status.OPEN, Status.OPEN, Status.PENDING, Status.NEW, Status.OPEN, Status.SOLVED]
    now = timezone.now()
    out = []
    for i in range(n):
        at = now - timedelta(minutes=7 + i * 97 + (i % 3) * 13)
        t = ticket(
            tenant,
            DEMO_SUBJECTS[i % len(DEMO_SUBJECTS)],
            requester=people[i % len(people)],
            mailbox=boxes[i % 3 if i % 5 else 1],
            queue=queues[1] if i % 5 == 0 else queues[0],
            status=statuses[i % len(statuses)],
            priority=Priority.URGENT if i % 11 == 2 else Priority.HIGH if i % 7 == 3 else Priority.NORMAL,
            assignee=None if i % 4 == 1 else agents[i % len(agents)],
            at=at,
            tags=[tags[i % 3]] if i % 4 == 0 else [],
        )
        if i % 3 == 1:
            Ticket.objects.filter(pk=t.pk).update(last_message_inbound=False)
        if i % 4 not in (0, 2):
            for user in read_by:
                lists.mark_read(t, user)
        out.append(t)
    return out
