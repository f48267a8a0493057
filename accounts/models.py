"""Tenants, users and who belongs where: the base of every access decision."""

import hashlib
import secrets
import zoneinfo
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

# Slugs that would shadow the app's own top-level URLs.
RESERVED_SLUGS = frozenset(
    [
        "accounts",
        "admin",
        "api",
        "healthz",
        "readyz",
        "invite",
        "login",
        "logout",
        "oauth",
        "signup",
        "static",
        "media",
        "password-reset",
        "www",
        "mail",
        "help",
        "about",
    ]
)
slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$",
    "Use 1 to 40 lowercase letters, digits and dashes, not starting or ending with a dash.",
)
TIMEZONE_CHOICES = [(tz, tz) for tz in sorted(zoneinfo.available_timezones()) if "/" in tz or tz == "UTC"]


class Tenant(models.Model):
    """A company running its support here; everything else hangs off one."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=40, unique=True, validators=[slug_validator])
    timezone = models.CharField(max_length=64, default="UTC", choices=TIMEZONE_CHOICES)
    language = models.CharField(max_length=8, default="en", choices=settings.LANGUAGES)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields) -> "User":
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields) -> "User":
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)

    def get_by_natural_key(self, username: str) -> "User":
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in by email; may belong to several tenants."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=120, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    mobile = models.CharField(max_length=40, blank=True)
    fax = models.CharField(max_length=40, blank=True)
    signature = models.TextField(blank=True, help_text="Your personal email signature. Variables allowed.")
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.name or self.email.split("@")[0]

    @property
    def initials(self) -> str:
        parts = (self.name or self.email).replace("@", " ").replace(".", " ").split()
        return "".join(p[0] for p in parts[:2]).upper() or "?"


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    AGENT = "agent", "Agent"
    LIGHT_AGENT = "light_agent", "Light agent"


class MembershipQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant) -> "MembershipQuerySet":
        return self.filter(tenant=tenant)

    def owners(self) -> "MembershipQuerySet":
        return self.filter(role=Role.OWNER)

    def admins(self) -> "MembershipQuerySet":
        return self.filter(role__in=[Role.OWNER, Role.ADMIN])


class Membership(models.Model):
    """A user's place in a tenant; the role decides what they may do there."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    is_available = models.BooleanField(default=True, help_text="Available for automatic assignment.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user")]
        ordering = ["user__email"]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.get_role_display()})"

    @property
    def is_admin(self) -> bool:
        return self.role in (Role.OWNER, Role.ADMIN)

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER

    @property
    def can_write_to_customers(self) -> bool:
        """Light agents read tickets and write internal notes, nothing that leaves the building."""
        return self.role != Role.LIGHT_AGENT


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class InvitationQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant) -> "InvitationQuerySet":
        return self.filter(tenant=tenant)

    def pending(self) -> "InvitationQuerySet":
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())

    def by_token(self, token: str) -> "InvitationQuerySet":
        return self.filter(token_hash=_hash_token(token))


class Invitation(models.Model):
    """An emailed link that lets one address join a tenant with a role, once, before it expires.

    Only the token's hash is stored, so a database leak does not hand out working links.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.tenant}"

    @classmethod
    def new(cls, *, tenant: Tenant, email: str, role: str, invited_by) -> tuple["Invitation", str]:
        """An unsaved invitation and its clear-text token (shown once, in the email)."""
        token = secrets.token_urlsafe(32)
        invitation = cls(
            tenant=tenant,
            email=email.lower(),
            role=role,
            invited_by=invited_by,
            token_hash=_hash_token(token),
            expires_at=timezone.now() + timedelta(days=settings.INVITATION_MAX_AGE_DAYS),
        )
        return invitation, token

    @property
    def is_usable(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()
