"""Changing roles and removing members, with the rules that keep a workspace manageable."""

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts.models import Membership, Role


def _check_may_manage(actor: Membership, target: Membership, new_role: str | None = None) -> None:
    if not actor.is_admin:
        raise PermissionDenied("Only admins can manage members.")
    touches_owner = target.role == Role.OWNER or new_role == Role.OWNER
    if touches_owner and not actor.is_owner:
        raise PermissionDenied("Only an owner can grant or take away the owner role.")


def _check_not_last_owner(target: Membership) -> None:
    if target.role == Role.OWNER and Membership.objects.for_tenant(target.tenant).owners().count() <= 1:
        raise ValidationError("A workspace needs at least one owner. Make someone else an owner first.")


@transaction.atomic
def change_role(actor: Membership, target: Membership, role: str) -> Membership:
    """Give `target` a new role; the last owner keeps theirs."""
    if role not in Role.values:
        raise ValidationError(f"Unknown role “{role}”.")
    target = Membership.objects.select_for_update().get(pk=target.pk)
    _check_may_manage(actor, target, role)
    if role != Role.OWNER:
        _check_not_last_owner(target)
    target.role = role
    target.save(update_fields=["role"])
    return target


@transaction.atomic
def remove_member(actor: Membership, target: Membership) -> None:
    """Take `target` out of the workspace; the last owner cannot be removed."""
    target = Membership.objects.select_for_update().get(pk=target.pk)
    _check_may_manage(actor, target)
    _check_not_last_owner(target)
    target.delete()


def may_manage(actor: Membership, target: Membership) -> bool:
    """Whether `actor` may change `target`'s role or remove them (the page shows controls only then)."""
    try:
        _check_may_manage(actor, target)
    except PermissionDenied:
        return False
    return True


def role_choices_for(actor: Membership) -> list[tuple[str, str]]:
    """The roles `actor` may hand out: only owners see the owner role."""
    return [(value, label) for value, label in Role.choices if value != Role.OWNER or actor.is_owner]


@dataclass(frozen=True)
class MemberRow:
    """One line of the members page: the membership and what the viewer may do with it."""

    membership: Membership
    is_you: bool
    can_manage: bool
    is_last_owner: bool


def member_rows(actor: Membership) -> list[MemberRow]:
    """Every member of `actor`'s tenant with the controls `actor` gets for them (two queries)."""
    memberships = list(Membership.objects.for_tenant(actor.tenant).select_related("user"))
    owners = sum(1 for m in memberships if m.is_owner)
    return [
        MemberRow(
            membership=m,
            is_you=m.user_id == actor.user_id,
            can_manage=may_manage(actor, m),
            is_last_owner=m.is_owner and owners <= 1,
        )
        for m in memberships
    ]
