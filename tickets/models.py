"""Tickets and what hangs off them: queues, messages (the thread), attachments, contacts and customers."""

import secrets

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import connection, models
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Membership, Tenant


class TenantQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant):
        return self.filter(tenant=tenant)


class Customer(models.Model):
    """A company the tenant supports; its contacts are found by address, then by the customer's domains."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="customers")
    name = models.CharField(max_length=200)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="customer_unique_name")]

    def __str__(self) -> str:
        return self.name


class CustomerDomain(models.Model):
    """An email domain that belongs to a customer (used to link new contacts)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253)

    class Meta:
        ordering = ["domain"]
        constraints = [models.UniqueConstraint(fields=["tenant", "domain"], name="customerdomain_unique")]

    def __str__(self) -> str:
        return self.domain

    def save(self, *args, **kwargs):
        self.domain = self.domain.strip().lower().lstrip("@")
        super().save(*args, **kwargs)


class Contact(models.Model):
    """A person who writes to the tenant, known by email address."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="contacts")
    email = models.EmailField(max_length=320)
    name = models.CharField(max_length=200, blank=True)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )
    phone = models.CharField(max_length=40, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["email"]
        constraints = [models.UniqueConstraint(fields=["tenant", "email"], name="contact_unique_email")]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email

    @property
    def display_name(self) -> str:
        return self.name or self.email

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.strip() else ""

    @property
    def domain(self) -> str:
        return self.email.rsplit("@", 1)[-1].lower()


class RoutingMode(models.TextChoices):
    MANUAL = "manual", "Manual"
    ROUND_ROBIN = "round_robin", "Round robin"
    FEWEST_OPEN = "fewest_open", "Fewest open tickets"


class Queue(models.Model):
    """A line of work: tickets land in one, and its members work them."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="queues")
    name = models.CharField(max_length=120)
    default_mailbox = models.ForeignKey(
        "mailboxes.Mailbox", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    members = models.ManyToManyField(Membership, blank=True, related_name="queues")
    restricted = models.BooleanField(
        default=False, help_text="Only its members (and admins) see its tickets."
    )
    routing = models.CharField(max_length=16, choices=RoutingMode.choices, default=RoutingMode.MANUAL)
    away_timeout_minutes = models.PositiveIntegerField(
        default=0, help_text="0: keep tickets with an away agent."
    )
    replies_first = models.BooleanField(default=False, help_text="Sort customer replies above new tickets.")
    last_assigned = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="queue_unique_name")]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=60)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="tag_unique_name")]

    def __str__(self) -> str:
        return self.name


class Status(models.TextChoices):
    NEW = "new", "New"
    OPEN = "open", "Open"
    PENDING = "pending", "Pending"
    SOLVED = "solved", "Solved"
    CLOSED = "closed", "Closed"


OPEN_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING)


class Priority(models.IntegerChoices):
    LOW = 1, "Low"
    NORMAL = 2, "Normal"
    HIGH = 3, "High"
    URGENT = 4, "Urgent"


class TicketQuerySet(TenantQuerySet):
    def open(self):
        return self.filter(status__in=OPEN_STATUSES)

    def replies_first(self, *then: str):
        """Customer replies to answered tickets above new tickets (`reply_rank` 0 vs 1), then `then`."""
        customer_replied = Q(
            status__in=OPEN_STATUSES, first_response_at__isnull=False, last_message_inbound=True
        )
        rank = models.Case(
            models.When(customer_replied, then=0), default=1, output_field=models.IntegerField()
        )
        return self.annotate(reply_rank=rank).order_by("reply_rank", *(then or ("-last_message_at", "-id")))

    def in_queue_order(self, queue: "Queue | None", *then: str):
        """The order of a queue's list: replies first when the queue asks for it, else `then` alone."""
        if queue is not None and queue.replies_first:
            return self.replies_first(*then)
        return self.order_by(*(then or ("-last_message_at", "-id")))

    def visible_to(self, membership: Membership):
        """Tickets of the member's tenant in queues and mailboxes they may see.

        No joins in the ticket query itself: no duplicate rows, so no DISTINCT, and list queries aggregate
        and paginate on this queryset directly; the ticket's own queue_id and mailbox_id decide, so its
        indexes answer lists and counters alone.
        """
        qs = self.for_tenant(membership.tenant)
        if membership.is_admin:
            return qs
        from tickets.access import loaded_visibility, visible_mailboxes, visible_queues

        loaded = loaded_visibility(membership)
        if loaded is not None:
            # The request already holds the lists (sidebar, filters, rows): literal ids are quicker to build
            # and to plan than the subqueries below (both took longer than running the counters).
            queue_ids, mailbox_ids = loaded
            queue_ok = Q(queue__isnull=True) | Q(queue_id__in=queue_ids)
            mailbox_ok = Q(mailbox__isnull=True) | Q(mailbox_id__in=mailbox_ids)
        else:
            # Otherwise (the live poll's check, most of all) one query with subqueries beats loading the lists.
            queue_ok = Q(queue__isnull=True) | Q(queue__in=visible_queues(membership).values("pk"))
            mailbox_ok = Q(mailbox__isnull=True) | Q(mailbox__in=visible_mailboxes(membership).values("pk"))
        return qs.filter(queue_ok & mailbox_ok)


def new_reply_token() -> str:
    return secrets.token_hex(8)


class Ticket(models.Model):
    """A customer's request and its whole conversation."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="tickets")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=998)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets")
    mailbox = models.ForeignKey(
        "mailboxes.Mailbox", null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tickets",
    )
    requester = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="tickets")
    participants = models.ManyToManyField(Contact, through="Participant", related_name="participating_in")
    reply_token = models.CharField(max_length=32, default=new_reply_token, editable=False)
    related_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    last_message_at = models.DateTimeField(default=timezone.now)
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    last_message_inbound = models.BooleanField(default=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    solved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=120, blank=True)
    # Maintained by tickets.search.reindex() (PostgreSQL only; stays NULL on SQLite, which searches by LIKE).
    search_vector = SearchVectorField(null=True, blank=True, editable=False)

    objects = TicketQuerySet.as_manager()

    class Meta:
        ordering = ["-last_message_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "number"], name="ticket_unique_number")]
        indexes = [
            models.Index(fields=["tenant", "status", "-last_message_at", "-id"]),
            models.Index(fields=["tenant", "assignee", "status"]),
            models.Index(fields=["tenant", "queue", "status"]),
            models.Index(fields=["tenant", "-last_message_at", "-id"], name="ticket_activity_idx"),
            models.Index(fields=["tenant", "-updated_at"], name="ticket_updated_idx"),
            models.Index(fields=["tenant", "-created_at", "-id"], name="ticket_created_idx"),
            # Covers the sidebar counters (open tickets per queue, mine, unassigned) as an index-only scan.
            models.Index(
                fields=["tenant", "status", "queue", "assignee", "mailbox"], name="ticket_counts_idx"
            ),
            # The open tickets (the working set, a few % of them all) by activity, then what the views,
            # queues and visibility rules filter on: "mine", "unassigned", "all open" and each queue read it
            # in order as an index-only scan and stop after one page, deep pages included. (Key columns
            # rather than INCLUDE, which SQLite lacks; after the unique id they do not change the order.)
            models.Index(
                fields=["tenant", "-last_message_at", "-id", "status", "queue", "assignee", "mailbox"],
                condition=Q(status__in=OPEN_STATUSES),
                name="ticket_open_activity_idx",
            ),
            GinIndex(fields=["search_vector"], name="ticket_search_gin"),
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.title}"

    def get_absolute_url(self) -> str:
        from accounts.access import tenant_reverse

        return tenant_reverse(self.tenant, "tickets:detail", self.number)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def reference(self) -> str:
        """The token customers see in subjects, e.g. ACME-1042."""
        return f"{self.tenant.slug.upper()}-{self.number}"


class TicketRead(models.Model):
    """When an agent last read a ticket: activity after `read_at` makes it unread for them again."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="reads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    read_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ticket", "user"], name="ticketread_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.ticket_id} at {self.read_at:%Y-%m-%d %H:%M}"


class TicketCounter(models.Model):
    """Per-tenant ticket numbers without gaps from races: one row locked by UPDATE ... RETURNING."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, primary_key=True, related_name="+")
    last_number = models.PositiveIntegerField(default=1000)

    @classmethod
    def next_number(cls, tenant: Tenant) -> int:
        """The next number; call inside the transaction that creates the ticket (the row stays locked)."""
        return cls.reserve(tenant.pk, 1)[0]

    @classmethod
    def reserve(cls, tenant_id: int, count: int) -> list[int]:
        """The tenant's next `count` numbers, in one statement where the database can (an upsert); call
        inside the transaction that creates the tickets: the row stays locked until it commits."""
        if connection.vendor in ("postgresql", "sqlite"):
            table = cls._meta.db_table
            with connection.cursor() as cur:
                cur.execute(
                    f"INSERT INTO {table} (tenant_id, last_number) VALUES (%s, %s) "  # noqa: S608
                    f"ON CONFLICT (tenant_id) DO UPDATE SET last_number = {table}.last_number + %s "
                    "RETURNING last_number",
                    [tenant_id, 1000 + count, count],
                )
                last = cur.fetchone()[0]
        else:
            cls.objects.get_or_create(tenant_id=tenant_id)
            cls.objects.filter(tenant_id=tenant_id).update(last_number=F("last_number") + count)
            last = cls.objects.values_list("last_number", flat=True).get(tenant_id=tenant_id)
        return list(range(last - count + 1, last + 1))

    @classmethod
    def give_back(cls, tenant_id: int, count: int) -> None:
        """Return the top `count` numbers of a reservation the current transaction made and still holds."""
        cls.objects.filter(tenant_id=tenant_id).update(last_number=F("last_number") - count)


class Participant(models.Model):
    """A contact taking part in a ticket (sender or copied): only participants thread into it."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ticket", "contact"], name="participant_unique")]


class MessageKind(models.TextChoices):
    INBOUND = "inbound", "Inbound email"
    OUTBOUND = "outbound", "Outbound email"
    NOTE = "note", "Internal note"
    AUTOMATIC = "automatic", "Automatic mail"


class MessageQuerySet(TenantQuerySet):
    pass


class Message(models.Model):
    """One entry of a ticket's thread."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=10, choices=MessageKind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    from_addr = models.CharField(max_length=320, blank=True)
    from_name = models.CharField(max_length=200, blank=True)
    to = models.JSONField(default=list, blank=True)
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True, help_text="Sanitised HTML; remote images blocked until asked.")
    message_id = models.CharField(max_length=998, blank=True, db_index=True)
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = models.JSONField(default=list, blank=True)
    threading_signal = models.CharField(max_length=32, blank=True)
    inbound = models.ForeignKey(
        "mailboxes.InboundMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_date = models.DateTimeField(null=True, blank=True, help_text="The Date header of an email.")
    created_at = models.DateTimeField(default=timezone.now)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["tenant", "message_id"])]
        constraints = [
            # A received mail is stored once per tenant, however many of its mailboxes it reached and however
            # many workers took it in at the same moment (intake turns the conflict into "duplicate").
            models.UniqueConstraint(
                fields=["tenant", "message_id"],
                condition=Q(kind__in=["inbound", "automatic"]) & ~Q(message_id=""),
                name="tickets_message_unique_inbound_id",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.ticket_id}"

    @property
    def is_internal(self) -> bool:
        return self.kind == MessageKind.NOTE


class Attachment(models.Model):
    """A file of a message, kept in object storage under its content hash."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    storage_key = models.CharField(max_length=255)
    content_id = models.CharField(max_length=255, blank=True)
    is_inline = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.filename


class TicketEvent(models.Model):
    """The ticket's history: who changed what, when."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    field = models.CharField(max_length=40)
    old = models.CharField(max_length=255, blank=True)
    new = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]


# --- notifications and SLAs (outbound issue) ---------------------------------------------------------------


class NotificationKind(models.TextChoices):
    NEW_TICKET_CONFIRMATION = "new_ticket_confirmation", "New ticket confirmation (to the contact)"
    AGENT_REPLY = "agent_reply", "New customer reply (to the agent)"
    ASSIGNED = "assigned", "Ticket assigned (to the agent)"
    RESOLUTION = "resolution", "Ticket solved (to the contact)"
    SLA_BREACH = "sla_breach", "SLA breach (to the assignee)"
    DELIVERY_FAILED = "delivery_failed", "Reply not delivered (to the agent)"


class NotificationTemplate(models.Model):
    """A tenant's wording of one automatic notification; missing rows fall back to the language defaults."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="notification_templates")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    enabled = models.BooleanField(default=True)
    subject = models.CharField(max_length=255)
    body = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["kind"]
        constraints = [models.UniqueConstraint(fields=["tenant", "kind"], name="notificationtemplate_unique")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.tenant})"


class NotificationPreference(models.Model):
    """Which notification mails one agent wants in one tenant (a missing row means: all of them)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    assigned_to_me = models.BooleanField("a ticket is assigned to me", default=True)
    reply_on_my_ticket = models.BooleanField("a customer replies on my ticket", default=True)
    sla_breach = models.BooleanField("my ticket breaches its SLA", default=True)
    delivery_failed = models.BooleanField("my reply could not be delivered", default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="notificationpref_unique")]

    def __str__(self) -> str:
        return f"Notification preferences of {self.user_id} in {self.tenant_id}"


def default_weekdays() -> list[int]:
    return [0, 1, 2, 3, 4]


class BusinessHours(models.Model):
    """When the tenant works: SLA clocks only run inside these hours."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="business_hours")
    weekdays = models.JSONField(default=default_weekdays, help_text="0 = Monday ... 6 = Sunday.")
    start = models.TimeField(default="09:00")
    end = models.TimeField(default="17:00")
    timezone = models.CharField(max_length=64, blank=True, help_text="Blank: the workspace's time zone.")

    def __str__(self) -> str:
        return f"Business hours of {self.tenant}"


class SlaPolicy(models.Model):
    """Targets for a queue and priority (blank = any); the most specific active policy applies."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="sla_policies")
    name = models.CharField(max_length=120)
    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, null=True, blank=True)
    first_response_minutes = models.PositiveIntegerField(null=True, blank=True)
    resolution_minutes = models.PositiveIntegerField(null=True, blank=True)
    business_hours_only = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "SLA policies"

    def __str__(self) -> str:
        return self.name


class SlaTarget(models.TextChoices):
    FIRST_RESPONSE = "first_response", "First response"
    RESOLUTION = "resolution", "Resolution"


class SlaBreach(models.Model):
    """A target a ticket missed; unique per (ticket, target), so a breach is found and alerted once."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="sla_breaches")
    target = models.CharField(max_length=16, choices=SlaTarget.choices)
    policy = models.ForeignKey(SlaPolicy, null=True, on_delete=models.SET_NULL, related_name="+")
    due_at = models.DateTimeField()
    detected_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-detected_at"]
        constraints = [models.UniqueConstraint(fields=["ticket", "target"], name="slabreach_once")]

    def __str__(self) -> str:
        return f"{self.get_target_display()} breach on {self.ticket_id}"


# --- routing, canned answers, closing (routing/admin issue) --------------------------------------------------


class AgentStatus(models.Model):
    """When a member went away: the clock that returns their tickets to the queue after its away timeout.

    `Membership.is_available` is the switch agents flip; this row remembers since when it has been off.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    membership = models.OneToOneField(Membership, on_delete=models.CASCADE, related_name="agent_status")
    away_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "agent statuses"

    def __str__(self) -> str:
        return (
            f"{self.membership_id} away since {self.away_since}"
            if self.away_since
            else f"{self.membership_id}"
        )


class CannedAnswerQuerySet(TenantQuerySet):
    def available_to(self, membership: Membership, mailbox=None):
        """Answers the member may use: tenant-wide ones and those of mailboxes they see (or of `mailbox`)."""
        from mailboxes.models import Mailbox

        qs = self.for_tenant(membership.tenant)
        if mailbox is not None:
            qs = qs.filter(Q(mailbox__isnull=True) | Q(mailbox=mailbox))
        if membership.is_admin:
            return qs
        visible = Mailbox.objects.visible_to(membership).values("pk")
        return qs.filter(Q(mailbox__isnull=True) | Q(mailbox__in=visible))


class CannedAnswer(models.Model):
    """A prepared reply agents insert by key or title; its body may use variables such as {{ contact.first_name }}."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="canned_answers")
    mailbox = models.ForeignKey(
        "mailboxes.Mailbox",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Blank: offered for every mailbox.",
    )
    key = models.CharField(max_length=40, help_text="Short code agents type, e.g. “refund”.")
    title = models.CharField(max_length=200)
    body = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CannedAnswerQuerySet.as_manager()

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="cannedanswer_unique_key")]

    def __str__(self) -> str:
        return f"{self.key}: {self.title}"


class CannedAnswerAttachment(models.Model):
    """A file sent along whenever the canned answer is used; bytes live in object storage under their hash."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    canned_answer = models.ForeignKey(CannedAnswer, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    storage_key = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["filename", "id"]

    def __str__(self) -> str:
        return self.filename


class CloseReason(models.Model):
    """Why a ticket was solved (“Answered”, “Duplicate”, “No reply”); the ticket keeps the text it was given."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="close_reasons")
    name = models.CharField(max_length=120)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="closereason_unique_name")]

    def __str__(self) -> str:
        return self.name


AUTO_CLOSE_DEFAULT_REASON = "No reply from the customer"


class AutoCloseRule(models.Model):
    """Pending tickets without a customer answer for `days` days are solved with `reason` (one rule per tenant)."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="auto_close_rule")
    enabled = models.BooleanField(default=False)
    days = models.PositiveIntegerField(default=7)
    reason = models.ForeignKey(
        CloseReason, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_run_at = models.DateTimeField(null=True, blank=True)
    tickets_closed = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"Auto-close rule of {self.tenant}"

    @classmethod
    def for_tenant(cls, tenant: Tenant) -> "AutoCloseRule":
        rule, _ = cls.objects.get_or_create(tenant=tenant)
        return rule

    @property
    def reason_text(self) -> str:
        return self.reason.name if self.reason_id else AUTO_CLOSE_DEFAULT_REASON
