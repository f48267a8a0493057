"""Inviting people by email: a link with a role that works once and expires."""

import logging
import smtplib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import Invitation, Membership, Role, Tenant, User

log = logging.getLogger(__name__)


class InvitationUnusable(Exception):
    """The link is unknown, expired, withdrawn or already used; `reason` says which."""

    def __init__(self, reason: str, invitation: Invitation | None = None):
        super().__init__(reason)
        self.reason = reason
        self.invitation = invitation


def _check_usable(invitation: Invitation | None) -> Invitation:
    if invitation is None:
        raise InvitationUnusable("unknown")
    if invitation.accepted_at is not None:
        raise InvitationUnusable("used", invitation)
    if invitation.revoked_at is not None:
        raise InvitationUnusable("withdrawn", invitation)
    if invitation.expires_at <= timezone.now():
        raise InvitationUnusable("expired", invitation)
    return invitation


def link_for(token: str) -> str:
    """The absolute URL of an invitation token, as sent in the email."""
    return settings.SITE_URL + reverse("invitation", args=[token])


def invite(*, tenant: Tenant, email: str, role: str, invited_by: User) -> Invitation:
    """Create an invitation and email its link; refuses addresses that are already members.

    A new invitation to the same address withdraws the older pending one, so only the latest link works.
    """
    email = email.strip().lower()
    if Membership.objects.for_tenant(tenant).filter(user__email__iexact=email).exists():
        raise ValidationError(f"{email} is already a member of {tenant.name}.")
    if role == Role.OWNER:
        raise ValidationError("Invite as admin, then make them an owner once they have joined.")
    if role not in Role.values:
        raise ValidationError(f"Unknown role “{role}”.")
    with transaction.atomic():
        Invitation.objects.for_tenant(tenant).pending().filter(email=email).update(revoked_at=timezone.now())
        invitation, token = Invitation.new(tenant=tenant, email=email, role=role, invited_by=invited_by)
        invitation.save()
    context = {
        "invitation": invitation,
        "tenant": tenant,
        "link": link_for(token),
        "inviter": invited_by,
        "max_age_days": settings.INVITATION_MAX_AGE_DAYS,
    }
    try:
        send_mail(
            subject=f"{invited_by.display_name} invited you to {tenant.name} on the helpdesk",
            message=render_to_string("accounts/email/invitation.txt", context),
            from_email=None,
            recipient_list=[email],
        )
    except (OSError, smtplib.SMTPException) as exc:
        # The link exists only in that email: an invitation nobody received is useless, so take it back.
        log.warning("invitation email to %s failed: %s", email, exc)
        invitation.delete()
        raise ValidationError(
            f"The invitation email could not be sent ({type(exc).__name__}). Check the outgoing mail "
            "settings of the helpdesk and try again."
        ) from exc
    return invitation


def find_usable(token: str) -> Invitation:
    """The invitation behind a link, if it can still be used; InvitationUnusable (with the reason) otherwise."""
    return _check_usable(Invitation.objects.by_token(token).select_related("tenant", "invited_by").first())


def _lock(token: str) -> Invitation:
    invitation = Invitation.objects.select_for_update().by_token(token).first()
    return _check_usable(invitation)


def _join(invitation: Invitation, user: User) -> Membership:
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    membership, _ = Membership.objects.get_or_create(
        tenant=invitation.tenant, user=user, defaults={"role": invitation.role}
    )
    return membership


@transaction.atomic
def accept(token: str, user: User) -> Membership:
    """Join the invited tenant as `user`; the row lock makes a second use of the same link fail."""
    invitation = _lock(token)
    if invitation.email.lower() != user.email.lower():
        raise ValidationError(
            f"This invitation is for {invitation.email}, but you are signed in as {user.email}. "
            f"Sign out, then open the link again and sign in as {invitation.email}."
        )
    return _join(invitation, user)


@transaction.atomic
def accept_with_new_account(token: str, *, name: str, password: str) -> Membership:
    """Create the invited address's account and join; the link is locked before the account is created.

    Locking first means two simultaneous submissions of the same link cannot both create the account: the
    second waits for the first, then finds the invitation used.
    """
    invitation = _lock(token)
    if User.objects.filter(email__iexact=invitation.email).exists():
        raise ValidationError(f"An account for {invitation.email} exists already. Sign in to accept.")
    user = User.objects.create_user(invitation.email, password, name=name)
    return _join(invitation, user)


def revoke(invitation: Invitation) -> None:
    """Withdraw a pending invitation: its link stops working at once."""
    Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).update(revoked_at=timezone.now())
