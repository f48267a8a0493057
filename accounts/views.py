"""Sign-up, invitations, profile, password and members: the accounts side of the web UI."""

from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts import invitations, members, tenancy
from accounts.access import admin_required, member_required, tenant_reverse
from accounts.forms import AcceptInvitationForm, InviteForm, ProfileForm, RoleForm, SignupForm, WorkspaceForm
from accounts.models import Invitation, Membership, User
from tickets import routing

# login() after sign-up or joining needs a backend named; axes only guards the sign-in form.
PASSWORD_BACKEND = "django.contrib.auth.backends.ModelBackend"


def get_membership(request, membership_id: int) -> Membership:
    """A membership of the current tenant; 404 for any other."""
    return get_object_or_404(
        Membership.objects.for_tenant(request.tenant).select_related("user"), pk=membership_id
    )


def home(request):
    """Send a signed-in user to the workspace they used last, else to the workspace picker."""
    if not request.user.is_authenticated:
        return redirect("login")
    memberships = (
        Membership.objects.filter(user=request.user).select_related("tenant").order_by("tenant__name")
    )
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
    form = form_class(request.POST or None)
    context = {"form": form, "site_host": settings.SITE_URL.split("://", 1)[-1]}
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                user = request.user
                if not user.is_authenticated:
                    user = User.objects.create_user(data["email"], data["password"], name=data["name"])
                tenant = tenancy.create_tenant(name=data["workspace_name"], slug=data["slug"], owner=user)
        except tenancy.TenantExists as exc:
            form.add_error("slug", str(exc))
            return render(request, "accounts/signup.html", context)
        except IntegrityError:  # the same email signed up a moment ago, between validation and insert
            form.add_error("email", "An account with this email exists. Sign in to create another workspace.")
            return render(request, "accounts/signup.html", context)
        if not request.user.is_authenticated:
            login(request, user, backend=PASSWORD_BACKEND)
        messages.success(
            request, f"Welcome to {tenant.name}! Connect your first mailbox to start receiving tickets."
        )
        return redirect(tenant_reverse(tenant, "tickets:inbox"))
    return render(request, "accounts/signup.html", context)


def _invitation_invalid(request, exc: invitations.InvitationUnusable):
    status = 404 if exc.reason == "unknown" else 410
    context = {"reason": exc.reason, "invite": exc.invitation}
    return render(request, "accounts/invitation_invalid.html", context, status=status)


def _joined(request, membership: Membership):
    messages.success(
        request, f"Welcome to {membership.tenant.name}! You joined as {membership.get_role_display()}."
    )
    return redirect(tenant_reverse(membership.tenant, "tickets:inbox"))


def invitation(request, token: str):
    """Accept an invitation: one click when signed in as the invited address, else create an account."""
    try:
        invite = invitations.find_usable(token)
    except invitations.InvitationUnusable as exc:
        return _invitation_invalid(request, exc)
    context = {"invite": invite, "form": None, "wrong_user": False}
    if request.user.is_authenticated:
        context["wrong_user"] = request.user.email.lower() != invite.email.lower()
        if request.method != "POST":
            return render(request, "accounts/invitation.html", context)
        try:
            membership = invitations.accept(token, request.user)
        except invitations.InvitationUnusable as exc:
            return _invitation_invalid(request, exc)
        except ValidationError:
            return render(request, "accounts/invitation.html", context, status=403)
        return _joined(request, membership)
    if User.objects.filter(email__iexact=invite.email).exists():
        messages.info(
            request, f"You already have an account as {invite.email}. Sign in to join {invite.tenant.name}."
        )
        return redirect_to_login(request.path)
    form = context["form"] = AcceptInvitationForm(request.POST or None, invited_email=invite.email)
    if request.method == "POST" and form.is_valid():
        try:
            membership = invitations.accept_with_new_account(token, **form.cleaned_data)
        except invitations.InvitationUnusable as exc:
            return _invitation_invalid(request, exc)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            login(request, membership.user, backend=PASSWORD_BACKEND)
            return _joined(request, membership)
    return render(request, "accounts/invitation.html", context)


@login_required
@member_required
def profile(request):
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Profile saved.")
        return redirect(tenant_reverse(request.tenant, "accounts:profile"))
    return render(request, "accounts/profile.html", {"form": form})


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change inside the app shell; keeps the session signed in."""

    template_name = "accounts/password_change.html"

    def get_success_url(self) -> str:
        return tenant_reverse(self.request.tenant, "accounts:profile")

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, "Password changed. Use the new one the next time you sign in.")
        return response


password_change = member_required(PasswordChangeView.as_view())


class PasswordResetView(auth_views.PasswordResetView):
    """The emailed link is built from SITE_URL, never from the request's Host header."""

    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"

    def form_valid(self, form):
        self.extra_email_context = {"site_url": settings.SITE_URL}
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"

    def form_valid(self, form):
        response = super().form_valid(form)
        # The lockout page sends people here; a new password must also lift the sign-in lockout.
        axes_reset(username=self.user.email.lower())
        return response


@require_POST
@member_required
def set_availability(request):
    request.membership.is_available = request.POST.get("available") == "1"
    request.membership.save(update_fields=["is_available"])
    routing.record_availability(request.membership)  # starts or stops the away clock
    if request.membership.is_available:
        messages.success(request, "You are available: new tickets can be assigned to you.")
    else:
        messages.info(request, "You are away: no new tickets are assigned to you automatically.")
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
        next_url = tenant_reverse(request.tenant, "tickets:inbox")
    return redirect(next_url)


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
        "rows": members.member_rows(request.membership),
        "invitations": Invitation.objects.for_tenant(request.tenant).pending().select_related("invited_by"),
        "form": form,
        "role_choices": members.role_choices_for(request.membership),
        "max_age_days": settings.INVITATION_MAX_AGE_DAYS,
    }
    return render(request, "accounts/members.html", context)


@require_POST
@admin_required
def member_role(request, membership_id: int):
    target = get_membership(request, membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the listed roles.")
    else:
        try:
            target = members.change_role(request.membership, target, form.cleaned_data["role"])
        except ValidationError as exc:
            messages.error(request, exc.messages[0])
        else:
            messages.success(
                request, f"{target.user.display_name} is now {target.get_role_display().lower()}."
            )
    return redirect(tenant_reverse(request.tenant, "accounts:members"))


@require_POST
@admin_required
def member_remove(request, membership_id: int):
    target = get_membership(request, membership_id)
    try:
        members.remove_member(request.membership, target)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect(tenant_reverse(request.tenant, "accounts:members"))
    if target.user_id == request.user.pk:
        messages.success(request, f"You left {request.tenant.name}.")
        return redirect("home")
    messages.success(request, f"{target.user.display_name} was removed from {request.tenant.name}.")
    return redirect(tenant_reverse(request.tenant, "accounts:members"))


@require_POST
@admin_required
def invitation_revoke(request, invitation_id: int):
    invite = get_object_or_404(Invitation.objects.for_tenant(request.tenant).pending(), pk=invitation_id)
    invitations.revoke(invite)
    messages.success(request, f"The invitation for {invite.email} was withdrawn.")
    return redirect(tenant_reverse(request.tenant, "accounts:members"))
