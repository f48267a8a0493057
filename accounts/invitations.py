"""Inviting people by email: a link with a role that works once and expires."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import Invitation, Membership, Role, Tenant, User


class InvitationUnusable(Exception):
    """The link is unknown, expired, revoked or already used."""


def invite(*, tenant: Tenant, email: str, role: str, invited_by: User) -> Invitation:
    """Create an invitation and email its link; refuses addresses that are already members."""
    email = email.strip().lower()
    if Membership.objects.for_tenant(tenant).filter(user__email__iexact=email).exists():
        raise ValidationError(f"{email} is already a member of {tenant.name}.")
    if role == Role.OWNER:
        raise ValidationError("Invite as admin, then make them an owner once they have joined.")
    Invitation.objects.for_tenant(tenant).pending().filter(email=email).update(revoked_at=timezone.now())
    invitation, token = Invitation.new(tenant=tenant, email=email, role=role, invited_by=invited_by)
    invitation.save()
    link = settings.SITE_URL + reverse("invitation", args=[token])
    context = {"invitation": invitation, "link": link, "inviter": invited_by}
    send_mail(
        subject=f"{invited_by.display_name} invited you to {tenant.name} on the helpdesk",
        message=render_to_string("accounts/email/invitation.txt", context),
        from_email=None,
        recipient_list=[email],
    )
    return invitation


def find_usable(token: str) -> Invitation:
    """The invitation behind a link, if it can still be used."""
    invitation = Invitation.objects.by_token(token).select_related("tenant").first()
    if invitation is None or not invitation.is_usable:
        raise InvitationUnusable
    return invitation


@transaction.atomic
def accept(token: str, user: User) -> Membership:
    """Join the invited tenant as `user`; the row lock makes a second use of the same link fail."""
    invitation = Invitation.objects.select_for_update().by_token(token).select_related("tenant").first()
    if invitation is None or not invitation.is_usable:
        raise InvitationUnusable
    if invitation.email.lower() != user.email.lower():
        raise ValidationError(f"This invitation is for {invitation.email}. Sign in with that address.")
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    membership, _ = Membership.objects.get_or_create(
        tenant=invitation.tenant, user=user, defaults={"role": invitation.role}
    )
    return membership
