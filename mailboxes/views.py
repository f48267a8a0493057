"""Mailbox settings pages (admins only): overview, add (OAuth or manual), detail sections, test, copy,
disable, delete, and the tenant's email defaults. The OAuth callback is in `callback` (one fixed URL)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.csp import CSP
from django.utils.safestring import mark_safe
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_POST

from accounts.access import admin_required, tenant_reverse
from mailboxes import autodiscover, lifecycle, oauth, signatures
from mailboxes.access import get_connection_test, get_mailbox
from mailboxes.forms import (
    DISCOVERY_FIELDS,
    SECTIONS,
    CopyForm,
    DeleteForm,
    EmailSettingsForm,
    ManualMailboxForm,
    TestForm,
)
from mailboxes.models import EmailSettings, Mailbox, Provider


def _is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


# --- overview and adding ---------------------------------------------------------------------------------------


@admin_required
def mailbox_list(request):
    mailboxes = Mailbox.objects.for_tenant(request.tenant).order_by("-is_default", "name")
    return render(request, "mailboxes/list.html", {"mailboxes": mailboxes, "providers": _providers(request)})


def _providers(request) -> dict[str, oauth.ProviderConfig]:
    return {name: oauth.provider_config(name, request.tenant) for name in oauth.provider_names()}


@admin_required
def add(request):
    return render(request, "mailboxes/add.html", {"providers": _providers(request)})


@require_POST
@admin_required
def connect(request, provider: str):
    if provider not in oauth.provider_names():
        raise Http404("Unknown provider.")
    try:
        url = oauth.start_connect(request, provider)
    except oauth.ConnectError as exc:
        messages.error(request, exc.message)
        return redirect(tenant_reverse(request.tenant, "mailboxes:add"))
    return redirect(url)


@admin_required
def manual(request):
    form = ManualMailboxForm(
        request.POST or None, tenant=request.tenant, initial={"email": request.GET.get("email", "")}
    )
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            mailbox = form.save()
            if not Mailbox.objects.filter(tenant=request.tenant, is_default=True).exists():
                lifecycle.set_default(mailbox)
            lifecycle.schedule_test(mailbox, reason="created", requested_by=request.user)
        messages.success(request, f"{mailbox.email} was added. We are testing the connection now.")
        return redirect(mailbox)
    discovery = autodiscover.discover(form["email"].value() or "") if form["email"].value() else None
    return render(request, "mailboxes/manual.html", {"form": form, "discovery": discovery})


@admin_required
def autodiscover_fields(request):
    """htmx, as the admin types the address: prefill the server fields that were empty or auto-filled."""
    form = ManualMailboxForm(tenant=request.tenant)
    discovery = autodiscover.discover(request.GET.get("email", ""))
    try:
        previous = json.loads(request.GET.get("discovered") or "{}")
    except ValueError:
        previous = {}
    values, filled, changed = {}, {}, False
    found = discovery.server_fields()
    for name in DISCOVERY_FIELDS:
        current = request.GET.get(name, "")
        untouched = current in ("", str(previous.get(name, "")))
        if untouched and name in found:
            values[name] = filled[name] = found[name]
            changed = changed or str(found[name]) != current
        elif untouched and previous.get(name) not in (None, ""):
            values[name] = ""  # the old guess does not fit the new address
            changed = True
        else:
            values[name] = current
    form = ManualMailboxForm(tenant=request.tenant, initial={**values, "discovered": json.dumps(filled)})
    # Only swap the server fields when they change: the admin may be typing in them while we looked.
    context = {"form": form, "discovery": discovery, "swap_servers": changed}
    return render(request, "mailboxes/_discovery.html", context)


# --- one mailbox -------------------------------------------------------------------------------------------------


def _section_forms(request, mailbox: Mailbox, bound: str | None = None):
    result = {}
    for name, (form_class, title) in SECTIONS.items():
        data = request.POST if name == bound else None
        result[name] = {
            "form": form_class(data, instance=mailbox, tenant=request.tenant, prefix=name),
            "title": title,
        }
    return result


def _detail_context(request, mailbox: Mailbox, **extra) -> dict:
    return {
        "mailbox": mailbox,
        "latest_test": mailbox.connection_tests.select_related("outbound").first(),
        "test_form": TestForm(),
        **extra,
    }


@admin_required
def detail(request, mailbox_id: int):
    mailbox = get_mailbox(request, mailbox_id)
    context = _detail_context(request, mailbox, sections=_section_forms(request, mailbox))
    return render(request, "mailboxes/detail.html", context)


@require_POST
@admin_required
def save_section(request, mailbox_id: int, section: str):
    mailbox = get_mailbox(request, mailbox_id)
    if section not in SECTIONS:
        raise Http404("No such section.")
    before = lifecycle.connection_snapshot(mailbox)
    sections = _section_forms(request, mailbox, bound=section)
    form = sections[section]["form"]
    saved, test = False, None
    if form.is_valid():
        with transaction.atomic():
            obj = form.save(commit=False)
            fields = [f for f in form.fields if f in {x.name for x in Mailbox._meta.concrete_fields}]
            fields += [
                f for f in ("imap_password", "smtp_password", "extra_folders", "key") if f not in fields
            ]
            obj.save(update_fields=[*{*fields, "updated_at"}])
            form.save_m2m()
            if lifecycle.connection_changed(before, mailbox):
                test = lifecycle.schedule_test(mailbox, reason="changed", requested_by=request.user)
        saved = True
        # Fresh, unbound forms (password fields empty again).
        sections = _section_forms(request, mailbox)
    if not _is_htmx(request):
        if saved:
            messages.success(request, f"{SECTIONS[section][1]} saved.")
            return redirect(f"{mailbox.get_absolute_url()}#{section}")
        return render(request, "mailboxes/detail.html", _detail_context(request, mailbox, sections=sections))
    context = _detail_context(
        request,
        mailbox,
        name=section,
        section=sections[section],
        saved=saved,
        new_test=test,
        sections=sections,
    )
    return render(
        request, "mailboxes/_section.html", context, status=200 if saved or form.is_valid() else 422
    )


@require_POST
@admin_required
def start_test(request, mailbox_id: int):
    mailbox = get_mailbox(request, mailbox_id)
    form = TestForm(request.POST)
    also = request.user.email if form.is_valid() and form.cleaned_data["also_send_to_me"] else ""
    test = lifecycle.schedule_test(mailbox, reason="button", requested_by=request.user, also_send_to=also)
    if _is_htmx(request):
        test.refresh_from_db()
        mailbox.refresh_from_db()
        context = {"mailbox": mailbox, "latest_test": test, "htmx_response": True}
        return render(request, "mailboxes/_test_panel.html", context)
    return redirect(f"{mailbox.get_absolute_url()}#health")


@admin_required
def test_status(request, mailbox_id: int, test_id: int):
    mailbox = get_mailbox(request, mailbox_id)
    test = get_connection_test(request, mailbox, test_id)
    context = {"mailbox": mailbox, "latest_test": test, "htmx_response": True}
    return render(request, "mailboxes/_test_panel.html", context)


@require_POST
@admin_required
def reconnect(request, mailbox_id: int):
    mailbox = get_mailbox(request, mailbox_id)
    if not mailbox.is_oauth:
        messages.info(request, "This mailbox signs in with a password: update it under Connection.")
        return redirect(f"{mailbox.get_absolute_url()}#connection")
    try:
        url = oauth.start_connect(request, mailbox.provider, mailbox=mailbox)
    except oauth.ConnectError as exc:
        messages.error(request, exc.message)
        return redirect(mailbox)
    return redirect(url)


@admin_required
def copy(request, mailbox_id: int):
    source = get_mailbox(request, mailbox_id)
    form = CopyForm(
        request.POST or None,
        source=source,
        initial={"name": f"{source.name} (copy)"[:120], "email": f"@{source.domain}"},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        key = data["key"] or lifecycle.unique_key(request.tenant, data["email"])
        if source.is_oauth:
            try:
                url = oauth.start_connect(
                    request,
                    source.provider,
                    copy_from=source,
                    copy_as={"email": data["email"], "name": data["name"], "key": key},
                )
            except oauth.ConnectError as exc:
                messages.error(request, exc.message)
                return redirect(source)
            return redirect(url)
        with transaction.atomic():
            mailbox = lifecycle.copy_settings(source, email=data["email"], name=data["name"], key=key)
            mailbox.imap_password = data["imap_password"]
            mailbox.smtp_password = data.get("smtp_password", "") if not source.smtp_same_credentials else ""
            mailbox.save()
            mailbox.visible_to.set(source.visible_to.all())
            lifecycle.schedule_test(mailbox, reason="created", requested_by=request.user)
        messages.success(
            request, f"{mailbox.email} was created as a copy of {source.email}. Testing the connection now."
        )
        return redirect(mailbox)
    return render(request, "mailboxes/copy.html", {"source": source, "form": form})


@require_POST
@admin_required
def toggle(request, mailbox_id: int):
    mailbox = get_mailbox(request, mailbox_id)
    activate = request.POST.get("active") == "1"
    lifecycle.set_active(mailbox, activate)
    if activate:
        lifecycle.schedule_test(mailbox, reason="enabled", requested_by=request.user)
        messages.success(request, f"{mailbox.email} is enabled again. Testing the connection now.")
    else:
        messages.success(
            request, f"{mailbox.email} is disabled: no mail is fetched or sent until you enable it."
        )
    if request.POST.get("next") == "list":
        return redirect(tenant_reverse(request.tenant, "mailboxes:list"))
    return redirect(mailbox)


@require_POST
@admin_required
def make_default(request, mailbox_id: int):
    mailbox = get_mailbox(request, mailbox_id)
    lifecycle.set_default(mailbox)
    messages.success(request, f"{mailbox.email} is now the default sending account.")
    return redirect(tenant_reverse(request.tenant, "mailboxes:list"))


@admin_required
def delete(request, mailbox_id: int):
    mailbox = get_mailbox(request, mailbox_id)
    form = DeleteForm(request.POST or None, mailbox=mailbox)
    if request.method == "POST" and form.is_valid():
        email = mailbox.email
        lifecycle.delete_mailbox(mailbox)
        messages.success(request, f"{email} was deleted. Its tickets are still there.")
        return redirect(tenant_reverse(request.tenant, "mailboxes:list"))
    ticket_count = mailbox.tickets.count()
    return render(
        request, "mailboxes/delete.html", {"mailbox": mailbox, "form": form, "ticket_count": ticket_count}
    )


# --- tenant email defaults -------------------------------------------------------------------------------------


@admin_required
def email_settings(request):
    settings_obj = EmailSettings.for_tenant(request.tenant)
    form = EmailSettingsForm(request.POST or None, instance=settings_obj, tenant=request.tenant)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.save()
            chosen = form.cleaned_data.get("default_mailbox")
            if chosen is not None:
                lifecycle.set_default(chosen)
            else:
                Mailbox.objects.filter(tenant=request.tenant, is_default=True).update(is_default=False)
        messages.success(request, "Email defaults saved.")
        return redirect(tenant_reverse(request.tenant, "mailboxes:email_settings"))
    return render(
        request,
        "mailboxes/email_settings.html",
        {"form": form, "variables_help": signatures.VARIABLES_HELP},
    )


SAMPLE_CONTENT = (
    "<p>Hello Jane,</p><p>Thanks for getting in touch. We have looked into your question and the replacement "
    "part is on its way; you will get a tracking number tomorrow.</p><p>Best regards,<br>Sam<br>{tenant}</p>"
)
DEFAULT_LAYOUT = (
    '<div style="font-family: -apple-system, Segoe UI, Roboto, Arial, sans-serif; font-size: 14px; '
    'line-height: 1.5; color: #101828;">{{ content }}</div>'
)
PREVIEW_CSP = {
    "default-src": [CSP.NONE],
    "style-src": [CSP.UNSAFE_INLINE],
    "img-src": ["data:", "https:"],
    "font-src": ["data:", "https:"],
    "frame-ancestors": [CSP.SELF],
}


@csp_override(PREVIEW_CSP)
@admin_required
def layout_preview(request):
    """The HTML layout around a sample reply, shown in a sandboxed frame (POST: the unsaved layout)."""
    if request.method == "POST":
        layout = request.POST.get("html_layout", "")
    else:
        layout = EmailSettings.for_tenant(request.tenant).html_layout
    layout = layout if layout.strip() else DEFAULT_LAYOUT
    content = mark_safe(SAMPLE_CONTENT.replace("{tenant}", signatures.text_to_html(request.tenant.name)))  # noqa: S308 - our constant
    problem = signatures.check(layout, html=True)
    if problem is not None:
        html = f'<p style="font-family:sans-serif;color:#b42318">{signatures.text_to_html(problem)}</p>'
    else:
        html = signatures.render_html(layout, signatures.variables(tenant=request.tenant, content=content))
    response = HttpResponse(html)
    response["X-Frame-Options"] = "SAMEORIGIN"
    return response


# --- OAuth callback (outside any tenant: one fixed URL registered at the providers) -------------------------------


@login_required
def callback(request):
    try:
        result = oauth.finish_connect(request, request.GET)
    except oauth.ConnectError as exc:
        if exc.tenant is None:
            return render(request, "mailboxes/oauth_error.html", {"message": exc.message}, status=400)
        messages.error(request, exc.message)
        target = (
            exc.mailbox.get_absolute_url() if exc.mailbox else tenant_reverse(exc.tenant, "mailboxes:list")
        )
        return redirect(target)
    mailbox = result.mailbox
    lifecycle.schedule_test(
        mailbox, reason="connected" if result.created else "reconnected", requested_by=request.user
    )
    label = dict(Provider.choices).get(mailbox.provider, mailbox.provider)
    if result.created:
        messages.success(request, f"{mailbox.email} is connected ({label}). We are testing it now.")
    else:
        messages.success(request, f"{mailbox.email} is reconnected. We are testing it now.")
    return redirect(mailbox)
