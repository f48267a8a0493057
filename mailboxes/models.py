"""Mailboxes (a tenant's email accounts), the tenant's email defaults, and the inbound and outbound ledgers."""

from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Membership, Tenant
from mailboxes.vault import EncryptedTextField


class Provider(models.TextChoices):
    MICROSOFT = "microsoft", "Microsoft 365 / Outlook"
    GOOGLE = "google", "Google / Gmail"
    OTHER = "other", "Other (IMAP/SMTP)"


class AuthMethod(models.TextChoices):
    PASSWORD = "password", "Password"
    OAUTH2 = "oauth2", "OAuth 2.0"


class Security(models.TextChoices):
    SSL = "ssl", "SSL/TLS"
    STARTTLS = "starttls", "STARTTLS"
    NONE = "none", "None (unencrypted)"


class Health(models.TextChoices):
    PENDING = "pending", "Not tested yet"
    CONNECTED = "connected", "Connected"
    NEEDS_RECONNECT = "needs_reconnect", "Needs reconnect"
    FAILING = "failing", "Failing"
    DISABLED = "disabled", "Disabled"


class AfterImport(models.TextChoices):
    KEEP = "keep", "Keep unread"
    MARK_READ = "mark_read", "Mark as read"
    MOVE = "move", "Move to folder"
    DELETE = "delete", "Delete"


class Visibility(models.TextChoices):
    ALL = "all", "All agents"
    MEMBERS = "members", "Only chosen members"


class MailboxQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant) -> "MailboxQuerySet":
        return self.filter(tenant=tenant)

    def active(self) -> "MailboxQuerySet":
        return self.filter(is_active=True).exclude(health=Health.DISABLED)

    def visible_to(self, membership: Membership) -> "MailboxQuerySet":
        """Mailboxes this member may see: admins see all; others those open to all agents or to them."""
        qs = self.for_tenant(membership.tenant)
        if membership.is_admin:
            return qs
        return qs.filter(Q(visibility=Visibility.ALL) | Q(visible_to=membership)).distinct()

    def due_for_poll(self, now=None) -> "MailboxQuerySet":
        now = now or timezone.now()
        return (
            self.active()
            .filter(tickets_enabled=True)
            .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now))
            .filter(Q(poll_lease_until__isnull=True) | Q(poll_lease_until__lt=now))
        )


key_validator = RegexValidator(r"^[A-Za-z0-9]{1,5}$", "Use 1 to 5 letters or digits.")


class Mailbox(models.Model):
    """One email account of a tenant: how to reach it, what to do with its mail, and how it is doing."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="mailboxes")
    # --- details
    name = models.CharField("display name", max_length=120)
    description = models.CharField(max_length=255, blank=True)
    key = models.CharField(
        "short key",
        max_length=5,
        validators=[key_validator],
        help_text="Shown as a chip on tickets, e.g. SUP.",
    )
    email = models.EmailField()
    sender_name = models.CharField(max_length=120, blank=True, help_text="The name customers see in From.")
    reply_to = models.EmailField(blank=True)
    provider = models.CharField(max_length=16, choices=Provider.choices, default=Provider.OTHER)
    auth_method = models.CharField(max_length=16, choices=AuthMethod.choices, default=AuthMethod.PASSWORD)
    # --- IMAP
    imap_host = models.CharField(max_length=255, blank=True)
    imap_port = models.PositiveIntegerField(default=993, validators=[MaxValueValidator(65535)])
    imap_security = models.CharField(max_length=10, choices=Security.choices, default=Security.SSL)
    imap_username = models.CharField(max_length=255, blank=True)
    imap_password = EncryptedTextField(blank=True, default="")
    # --- SMTP
    smtp_host = models.CharField(max_length=255, blank=True)
    smtp_port = models.PositiveIntegerField(default=587, validators=[MaxValueValidator(65535)])
    smtp_security = models.CharField(max_length=10, choices=Security.choices, default=Security.STARTTLS)
    smtp_same_credentials = models.BooleanField("same credentials as IMAP", default=True)
    smtp_username = models.CharField(max_length=255, blank=True)
    smtp_password = EncryptedTextField(blank=True, default="")
    allow_self_signed = models.BooleanField(
        default=False, help_text="Accept certificates that are self-signed or do not match. Not recommended."
    )
    allow_private_hosts = models.BooleanField(
        default=False, help_text="Set by ops (CLI) for servers on a private network."
    )
    connect_timeout = models.PositiveIntegerField(
        "connection timeout (seconds)", default=20, validators=[MinValueValidator(1), MaxValueValidator(300)]
    )
    auth_timeout = models.PositiveIntegerField(
        "sign-in timeout (seconds)",
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(600)],
        help_text="How long to wait for answers once connected (greeting, sign-in, commands).",
    )
    # --- OAuth
    oauth_access_token = EncryptedTextField(blank=True, default="")
    oauth_refresh_token = EncryptedTextField(blank=True, default="")
    oauth_expires_at = models.DateTimeField(null=True, blank=True)
    oauth_scope = models.TextField(blank=True)
    # Claimed with a conditional UPDATE by the one worker that refreshes the token (see oauth.access_token).
    oauth_refresh_lease_until = models.DateTimeField(null=True, blank=True)
    reconnect_notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When admins were emailed that this mailbox needs reconnecting."
    )
    # --- folders
    folder_inbox = models.CharField(max_length=255, default="INBOX")
    folder_sent = models.CharField(max_length=255, blank=True)
    folder_drafts = models.CharField(max_length=255, blank=True)
    folder_trash = models.CharField(max_length=255, blank=True)
    folder_archive = models.CharField(max_length=255, blank=True)
    extra_folders = models.JSONField(default=list, blank=True, help_text="More folders to import from.")
    detected_folders = models.JSONField(
        default=list, blank=True, help_text="Folder names found on the server by the last connection test."
    )
    save_to_sent = models.BooleanField(
        default=True,
        help_text="Append sent replies to the Sent folder (skipped for Gmail and Microsoft 365).",
    )
    # --- who may see it
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.ALL)
    visible_to = models.ManyToManyField(Membership, blank=True, related_name="visible_mailboxes")
    # --- sending
    is_default = models.BooleanField("default for sending", default=False)
    signature = models.TextField(blank=True, help_text="Used when the agent has no signature of their own.")
    # --- ticket import
    is_active = models.BooleanField(default=True)
    tickets_enabled = models.BooleanField("import into tickets", default=True)
    default_queue = models.ForeignKey(
        "tickets.Queue", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    import_since = models.DateField("import mail from", null=True, blank=True)
    after_import = models.CharField(max_length=10, choices=AfterImport.choices, default=AfterImport.KEEP)
    after_import_folder = models.CharField(max_length=255, blank=True)
    close_automatically = models.BooleanField(
        default=False, help_text="Import tickets as closed (an archive)."
    )
    header_filter = models.CharField(
        max_length=255, blank=True, help_text="Only import mail with this header, e.g. “X-Support: yes”."
    )
    poll_interval = models.PositiveIntegerField(
        "poll every (seconds)", default=60, validators=[MinValueValidator(5), MaxValueValidator(3600)]
    )
    connected_at = models.DateTimeField(null=True, blank=True, help_text="Mail older than this is history.")
    # --- auto-reply
    autoreply_enabled = models.BooleanField(default=False)
    autoreply_subject = models.CharField(
        max_length=255, blank=True, default="We received your request [{{ ticket.reference }}]"
    )
    autoreply_body = models.TextField(blank=True)
    # --- health and polling state
    health = models.CharField(max_length=20, choices=Health.choices, default=Health.PENDING)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_poll_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_advice = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    messages_imported = models.PositiveBigIntegerField(default=0)
    messages_quarantined = models.PositiveBigIntegerField(default=0)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    poll_lease_until = models.DateTimeField(null=True, blank=True)
    poll_lease_owner = models.CharField(max_length=64, blank=True)
    history_total = models.PositiveIntegerField(default=0)
    history_done = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MailboxQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "mailboxes"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "email"], name="mailbox_unique_email"),
            models.UniqueConstraint(fields=["tenant", "key"], name="mailbox_unique_key"),
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(is_default=True), name="mailbox_one_default_per_tenant"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    def get_absolute_url(self) -> str:
        from accounts.access import tenant_reverse

        return tenant_reverse(self.tenant, "mailboxes:detail", self.pk)

    @property
    def is_oauth(self) -> bool:
        return self.auth_method == AuthMethod.OAUTH2

    @property
    def provider_saves_sent(self) -> bool:
        """Gmail and Microsoft 365 store submitted mail in Sent themselves; appending would duplicate it."""
        return self.provider in (Provider.GOOGLE, Provider.MICROSOFT)

    @property
    def imap_login(self) -> tuple[str, str]:
        return self.imap_username or self.email, self.imap_password

    @property
    def smtp_login(self) -> tuple[str, str]:
        if self.smtp_same_credentials:
            return self.imap_username or self.email, self.imap_password
        return self.smtp_username or self.email, self.smtp_password

    @property
    def from_header_name(self) -> str:
        return self.sender_name or self.name

    def folders_to_poll(self) -> list[str]:
        return [self.folder_inbox, *[f for f in self.extra_folders if f and f != self.folder_inbox]]

    def token_expires_soon(self, margin: timedelta = timedelta(minutes=5)) -> bool:
        return self.oauth_expires_at is None or self.oauth_expires_at - margin <= timezone.now()

    #: Fields whose change means the account must be tested again.
    CONNECTION_FIELDS = (
        "email",
        "auth_method",
        "imap_host",
        "imap_port",
        "imap_security",
        "imap_username",
        "imap_password",
        "smtp_host",
        "smtp_port",
        "smtp_security",
        "smtp_same_credentials",
        "smtp_username",
        "smtp_password",
        "allow_self_signed",
        "connect_timeout",
        "auth_timeout",
    )

    @property
    def is_disabled(self) -> bool:
        return not self.is_active or self.health == Health.DISABLED

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2].lower()


class SenderNameFormat(models.TextChoices):
    AGENT_VIA = "agent_via", "“Agent name via Sender name”"
    MAILBOX = "mailbox", "The mailbox's sender name"


class QuoteHistory(models.TextChoices):
    NONE = "none", "None"
    LAST = "last", "Last message"
    FULL = "full", "Full conversation"


class EmailSettings(models.Model):
    """A tenant's email defaults: sender, signature, greeting, copies, layout and limits."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="email_settings")
    sender_name_format = models.CharField(
        max_length=16, choices=SenderNameFormat.choices, default=SenderNameFormat.AGENT_VIA
    )
    sender_name = models.CharField(max_length=120, blank=True, help_text="Defaults to the workspace name.")
    signature = models.TextField(blank=True, default="{{ agent.name }}\n{{ tenant.name }}")
    greeting = models.TextField(blank=True, default="Hello {{ contact.first_name|default:'there' }},")
    cc1 = models.EmailField("copy (CC) 1", blank=True)
    cc2 = models.EmailField("copy (CC) 2", blank=True)
    bcc = models.EmailField("blind copy (BCC)", blank=True)
    html_layout = models.TextField(
        blank=True, help_text="HTML around every mail; must contain {{ content }}."
    )
    quote_history = models.CharField(max_length=8, choices=QuoteHistory.choices, default=QuoteHistory.LAST)
    reopen_window_days = models.PositiveIntegerField(
        default=30, help_text="A reply to a ticket closed longer ago starts a new ticket."
    )
    hourly_send_cap = models.PositiveIntegerField(default=500)
    daily_send_cap = models.PositiveIntegerField(default=5000)
    autoreply_hourly_cap = models.PositiveIntegerField(default=100)

    def __str__(self) -> str:
        return f"Email settings of {self.tenant}"

    @classmethod
    def for_tenant(cls, tenant: Tenant) -> "EmailSettings":
        obj, _ = cls.objects.get_or_create(tenant=tenant)
        return obj


class FolderState(models.Model):
    """Where polling stands in one IMAP folder: UIDVALIDITY and the last UID taken."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="folder_states")
    folder = models.CharField(max_length=255)
    uidvalidity = models.BigIntegerField(null=True)
    last_uid = models.BigIntegerField(default=0)
    history_until_uid = models.BigIntegerField(
        default=0, help_text="UIDs up to this were already in the folder at connection time."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mailbox", "folder"], name="folderstate_unique")]

    def __str__(self) -> str:
        return f"{self.mailbox.email}/{self.folder} @ {self.last_uid}"


class InboundStatus(models.TextChoices):
    STORED = "stored", "Stored, waiting to be processed"
    PROCESSED = "processed", "Processed"
    QUARANTINED = "quarantined", "Quarantined"
    DUPLICATE = "duplicate", "Duplicate"
    DISCARDED = "discarded", "Discarded"


class InboundQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant) -> "InboundQuerySet":
        return self.filter(tenant=tenant)

    def quarantined(self) -> "InboundQuerySet":
        return self.filter(status=InboundStatus.QUARANTINED)


class InboundMessage(models.Model):
    """The ledger of every raw message taken from a mailbox, recorded before anything else happens to it."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    mailbox = models.ForeignKey(Mailbox, null=True, on_delete=models.SET_NULL, related_name="inbound")
    folder = models.CharField(max_length=255, blank=True)
    uidvalidity = models.BigIntegerField(null=True)
    uid = models.BigIntegerField(null=True)
    message_id = models.CharField(max_length=998, blank=True, db_index=True)
    sha256 = models.CharField(max_length=64)
    raw_key = models.CharField(max_length=255)
    size = models.PositiveIntegerField(default=0)
    sender = models.CharField(max_length=320, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    is_history = models.BooleanField(default=False)
    source = models.CharField(max_length=16, default="imap")  # imap | eml (import_eml) | api
    status = models.CharField(max_length=16, choices=InboundStatus.choices, default=InboundStatus.STORED)
    outcome = models.CharField(max_length=16, blank=True)  # new | reply | automatic | quarantined | duplicate
    quarantine_reason = models.TextField(blank=True)
    ticket = models.ForeignKey(
        "tickets.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trace = models.JSONField(default=list, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    after_import_done = models.BooleanField(default=False)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    objects = InboundQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["mailbox", "folder", "uidvalidity", "uid"],
                condition=Q(uid__isnull=False),
                name="inbound_unique_uid",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "status"]),
            models.Index(fields=["tenant", "sha256"]),
        ]

    def __str__(self) -> str:
        return f"Inbound {self.pk} ({self.status})"


class OutboundKind(models.TextChoices):
    REPLY = "reply", "Reply"
    FORWARD = "forward", "Forward"
    AUTO_REPLY = "auto_reply", "Auto-reply"
    NOTIFICATION = "notification", "Notification"
    TEST = "test", "Connection test"


class OutboundStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DEFERRED = "deferred", "Deferred, will retry"
    FAILED = "failed", "Failed"
    UNCERTAIN = "uncertain", "Uncertain: check before resending"


class OutboundQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant) -> "OutboundQuerySet":
        return self.filter(tenant=tenant)

    def due(self, now=None) -> "OutboundQuerySet":
        now = now or timezone.now()
        return self.filter(
            Q(status=OutboundStatus.QUEUED) | Q(status=OutboundStatus.DEFERRED, next_attempt_at__lte=now)
        )


class OutboundEmail(models.Model):
    """The transactional outbox: one row per mail we send, written with the thing that caused it."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    mailbox = models.ForeignKey(Mailbox, null=True, on_delete=models.SET_NULL, related_name="outbound")
    kind = models.CharField(max_length=16, choices=OutboundKind.choices)
    ticket = models.ForeignKey(
        "tickets.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ticket_message = models.ForeignKey(
        "tickets.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="outbound"
    )
    from_addr = models.CharField(max_length=998)
    to = models.JSONField(default=list)
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    message_id = models.CharField(max_length=255, unique=True)
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=OutboundStatus.choices, default=OutboundStatus.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    smtp_code = models.IntegerField(null=True, blank=True)
    smtp_text = models.TextField(blank=True)
    error_message = models.TextField(blank=True)
    error_advice = models.TextField(blank=True)
    raw_key = models.CharField(max_length=255, blank=True)
    size = models.PositiveIntegerField(default=0)
    # --- content, fixed when the row is written (the .eml is built from it on the first attempt)
    reply_to = models.CharField(max_length=998, blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    attachment_refs = models.JSONField(
        default=list, blank=True, help_text="[{key, filename, content_type, size}] streamed from storage."
    )
    extra_headers = models.JSONField(default=dict, blank=True)
    # --- delivery bookkeeping
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    first_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="Start of the 24 h retry window."
    )
    claim_token = models.CharField(max_length=32, blank=True, help_text="Which sender run holds the row.")
    data_sent_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The end of the message went to the server: a crash after this is uncertain.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    appended_to_sent = models.BooleanField(default=False)

    objects = OutboundQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"]),
            models.Index(fields=["status", "next_attempt_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {', '.join(self.to)} ({self.status})"


class AutoReplyLog(models.Model):
    """One row per (mailbox, sender, day) an auto-reply went out: the at-most-once-a-day rule."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="+")
    sender = models.EmailField()
    day = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "sender", "day"], name="autoreply_once_a_day")
        ]


class TestStatus(models.TextChoices):
    QUEUED = "queued", "Waiting to start"
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"


class ConnectionTest(models.Model):
    """One run of the connection test of a mailbox: IMAP and SMTP steps with their results in plain words."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="connection_tests")
    status = models.CharField(max_length=10, choices=TestStatus.choices, default=TestStatus.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=40, blank=True)  # created | changed | button | cli | reconnected
    also_send_to = models.EmailField(blank=True)
    steps = models.JSONField(default=list, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    message = models.TextField(blank=True)
    advice = models.TextField(blank=True)
    outbound = models.ForeignKey(
        OutboundEmail, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        get_latest_by = "created_at"

    def __str__(self) -> str:
        return f"Connection test {self.pk} of {self.mailbox_id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (TestStatus.PASSED, TestStatus.FAILED)

    @property
    def is_stale(self) -> bool:
        """Still waiting a minute after it was queued: no worker seems to be running."""
        return self.status == TestStatus.QUEUED and self.created_at < timezone.now() - timedelta(minutes=1)


class OAuthApp(models.Model):
    """A tenant's own OAuth app at Microsoft or Google, used instead of the deployment's (optional)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="oauth_apps")
    provider = models.CharField(
        max_length=16, choices=[(Provider.MICROSOFT, "Microsoft"), (Provider.GOOGLE, "Google")]
    )
    client_id = models.CharField(max_length=255)
    client_secret = EncryptedTextField(blank=True, default="")
    directory = models.CharField(
        "Microsoft directory (tenant) ID",
        max_length=100,
        blank=True,
        help_text="Only for Microsoft: your directory ID instead of “common”.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "provider"], name="oauthapp_one_per_provider")
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} app of {self.tenant}"

    @classmethod
    def provider_labels(cls) -> dict[str, str]:
        """provider -> name, for every provider a tenant can bring its own app for."""
        return dict(cls._meta.get_field("provider").choices)

    @property
    def secret_hint(self) -> str:
        """How the settings page names the saved secret without showing it: its last four characters
        ("…Qx7z"), only when the secret is long enough that they give nothing away; else ""."""
        secret = str(self.client_secret)
        return f"…{secret[-4:]}" if len(secret) >= 16 else ""
