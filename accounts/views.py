"""Sign-up, invitations, profile and members: the accounts side of the web UI."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts import invitations, members, tenancy
from accounts.access import admin_required, member_required, tenant_reverse
from accounts.forms import AcceptInvitationForm, InviteForm, ProfileForm, RoleForm, SignupForm, WorkspaceForm
from accounts.models import Invitation, Membership, User


def get_membership(request, membership_id: int) -> Membership:
    """A membership of the current tenant; 404 for any other."""
    return get_object_or_404(Membership.objects.for_tenant(request.tenant).select_related("user"), pk=membership_id)


def home(request):
    """Send a signed-in user to the workspace they used last, else to the workspace picker."""
    if not request.user.is_authenticated:
        return redirect("login")
    memberships = Membership.objects.filter(user=request.user).select_related("tenant").order_by("tenant__name")
    last = request.session.get("last_tenant")
    chosen = next((m for m in memberships if m.tenant.slug == last), None)
    if chosen is None and len(memberships) == 1:
        chosen = memberships[0]
    if chosen:
        return redirect(tenant_reverse(chosen.tenant, "tickets:inbox"))
    return render(request, "accounts/workspaces.html", {"memberships": memberships})


def signup(request):
    """A new workspace and its owner; a signed-in user only names the workspace."""
    form_class = WorkspaceForm if request.user.is_authenticated else SignupForm
    form = form_class(request.POST or None, initial={"slug": ""})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with transaction.atomic():
            user = request.user
            if not user.is_authenticated:
                user = User.objects.create_user(data["email"], data["password"], name=data["name"])
            try:
                tenant = tenancy.create_tenant(name=data["workspace_name"], slug=data["slug"], owner=user)
            except tenancy.TenantExists as exc:
                form.add_error("slug", str(exc))
                transaction.set_rollback(True)
                return render(request, "accounts/signup.html", {"form": form})
        if not request.user.is_authenticated:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome to {tenant.name}! Connect your first mailbox to start receiving tickets.")
        return redirect(tenant_reverse(tenant, "tickets:inbox"))
    return render(request, "accounts/signup.html", {"form": form})


def invitation(request, token: str):
    """Accept an invitation: join directly when signed in as the invited address, else create an account."""
    try:
        invite = invitations.find_usable(token)
    except invitations.InvitationUnusable:
        return render(request, "accounts/invitation_invalid.html", status=410)
    existing = User.objects.filter(email__iexact=invite.email).first()
    if request.user.is_authenticated or existing:
        if not request.user.is_authenticated:
            messages.info(request, f"Sign in as {invite.email} to accept the invitation.")
            return redirect(f"{reverse('login')}?next={request.path}")
        if request.method == "POST":
            try:
                membership = invitations.accept(token, request.user)
            except invitations.InvitationUnusable:
                return render(request, "accounts/invitation_invalid.html", status=410)
            except ValidationError as exc:
                messages.error(request, exc.messages[0])
                return redirect("home")
            return redirect(tenant_reverse(membership.tenant, "tickets:inbox"))
        return render(request, "accounts/invitation.html", {"invite": invite, "form": None})
    form = AcceptInvitationForm(request.POST or None, invited_email=invite.email)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = User.objects.create_user(invite.email, form.cleaned_data["password"], name=form.cleaned_data["name"])
            try:
                membership = invitations.accept(token, user)
            except invitations.InvitationUnusable:
                transaction.set_rollback(True)
                return render(request, "accounts/invitation_invalid.html", status=410)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(tenant_reverse(membership.tenant, "tickets:inbox"))
    return render(request, "accounts/invitation.html", {"invite": invite, "form": form})


@login_required
@member_required
def profile(request):
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Profile saved.")
        return redirect(tenant_reverse(request.tenant, "accounts:profile"))
    return render(request, "accounts/profile.html", {"form": form})


@require_POST
@member_required
def set_availability(request):
    request.membership.is_available = request.POST.get("available") == "1"
    request.membership.save(update_fields=["is_available"])
    return redirect(request.POST.get("next") or tenant_reverse(request.tenant, "tickets:inbox"))


@admin_required
def member_list(request):
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            invitations.invite(tenant=request.tenant, invited_by=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error("email", exc.messages[0])
        else:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
            return redirect(tenant_reverse(request.tenant, "accounts:members"))
    context = {
        "members": Membership.objects.for_tenant(request.tenant).select_related("user"),
        "invitations": Invitation.objects.for_tenant(request.tenant).pending().select_related("invited_by"),
        "form": form,
        "role_form": RoleForm(),
    }
    return render(request, "accounts/members.html", context)


@require_POST
@admin_required
def member_role(request, membership_id: int):
    target = get_membership(request, membership_id)
    form = RoleForm(request.POST)
    if form.is_valid():
        try:
            members.change_role(request.membership, target, form.cleaned_data["role"])
            messages.success(request, f"{target.user.display_name} is now {target.get_role_display().lower()}.")
        except ValidationError as exc:
            messages.error(request, exc.messages[0])
    return redirect(tenant_reverse(request.tenant, "accounts:members"))


@require_POST
@admin_required
def member_remove(request, membership_id: int):
    target = get_membership(request, membership_id)
    try:
        members.remove_member(request.membership, target)
        messages.success(request, f"{target.user.display_name} was removed from {request.tenant.name}.")
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    return redirect(tenant_reverse(request.tenant, "accounts:members"))


@require_POST
@admin_required
def invitation_revoke(request, invitation_id: int):
    invite = get_object_or_404(Invitation.objects.for_tenant(request.tenant).pending(), pk=invitation_id)
    invite.revoked_at = timezone.now()
    invite.save(update_fields=["revoked_at"])
    messages.success(request, f"The invitation for {invite.email} was withdrawn.")
    return redirect(tenant_reverse(request.tenant, "accounts:members"))
