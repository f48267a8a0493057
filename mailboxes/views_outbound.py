"""Settings → Email log (every mail we sent, its delivery and a human's "retry now" / "send again"),
Settings → Templates (notification wording with a live preview), Settings → SLAs (policies and business
hours) and each member's notification choices.

Admins see the whole log. Agents reach the detail of a mail only through a ticket they may see (the
thread links to it), so they see the delivery details of their tickets and nothing else; members of other
tenants never get past the middleware (404).
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.access import admin_required, member_required, tenant_reverse
from mailboxes import blobs, mime, outbound, signatures
from mailboxes.models import Mailbox, OutboundEmail, OutboundKind, OutboundStatus
from tickets.models import (
    BusinessHours,
    NotificationKind,
    NotificationPreference,
    NotificationTemplate,
    Queue,
    SlaPolicy,
    Ticket,
)

PAGE_SIZE = 50
HEADER_BYTES = 64 * 1024


# --- access -------------------------------------------------------------------------------------------------


def get_outbound(request: HttpRequest, outbound_id: int, *, act: bool = False) -> OutboundEmail:
    """A mail of the current tenant that the member may see: admins any; others only mails of tickets they
    may see. 404 otherwise; `act=True` (retry, send again) also needs the right to write to customers."""
    qs = OutboundEmail.objects.for_tenant(request.tenant).select_related("mailbox", "ticket", "created_by")
    membership = request.membership
    if not membership.is_admin:
        qs = qs.filter(ticket__in=Ticket.objects.visible_to(membership).values("pk"))
    row = qs.filter(pk=outbound_id).first()
    if row is None:
        raise Http404("No such email.")
    if act:
        from accounts.access import require_customer_writer

        require_customer_writer(membership)
    return row


# --- the log ------------------------------------------------------------------------------------------------


class LogFilter(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *OutboundStatus.choices])
    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *OutboundKind.choices])
    mailbox = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    recipient = forms.CharField(required=False, max_length=254)
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        boxes = Mailbox.objects.for_tenant(tenant).values_list("pk", "name")
        self.fields["mailbox"].choices = [("", "Any mailbox"), *boxes]

    def apply(self, qs):
        if not self.is_valid():
            return qs
        data = self.cleaned_data
        if data["status"]:
            qs = qs.filter(status=data["status"])
        if data["kind"]:
            qs = qs.filter(kind=data["kind"])
        if data["mailbox"]:
            qs = qs.filter(mailbox_id=data["mailbox"])
        if data["recipient"]:
            term = data["recipient"].strip()
            qs = qs.filter(Q(to__icontains=term) | Q(cc__icontains=term) | Q(bcc__icontains=term))
        tz = dt.UTC
        if data["since"]:
            qs = qs.filter(created_at__gte=dt.datetime.combine(data["since"], dt.time.min, tz))
        if data["until"]:
            qs = qs.filter(
                created_at__lt=dt.datetime.combine(data["until"] + dt.timedelta(days=1), dt.time.min, tz)
            )
        return qs


@admin_required
def email_log(request):
    """Every mail the tenant sent or tries to send, newest first, filterable."""
    form = LogFilter(request.GET or None, tenant=request.tenant)
    qs = OutboundEmail.objects.for_tenant(request.tenant).select_related("mailbox").defer("text", "html")
    qs = form.apply(qs).order_by("-created_at", "-pk")
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode(), "statuses": OutboundStatus}
    return render(request, "mailboxes/emaillog.html", context)


def _headers(row: OutboundEmail) -> list[tuple[str, str]]:
    """The headers as sent (from the stored .eml), else as they will be sent."""
    if row.raw_key:
        try:
            with blobs.open_blob(row.raw_key) as f:
                head = f.read(HEADER_BYTES).split(b"\r\n\r\n", 1)[0]
            return mime.parse_headers(head + b"\r\n\r\n")
        except (OSError, ValueError):
            pass
    return mime.headers_for(row)


@member_required
def email_detail(request, outbound_id: int):
    row = get_outbound(request, outbound_id)
    context = {
        "row": row,
        "headers": _headers(row),
        "state": outbound.describe(row),
        "can_act": request.membership.can_write_to_customers,
        "bcc": row.bcc,
        "attachments": row.attachment_refs or [],
    }
    return render(request, "mailboxes/emaillog_detail.html", context)


@member_required
def email_raw(request, outbound_id: int):
    """The .eml exactly as it went to the server."""
    row = get_outbound(request, outbound_id)
    if not row.raw_key:
        raise Http404("This email was not built yet.")
    try:
        stream = blobs.open_blob(row.raw_key)
    except FileNotFoundError as exc:
        raise Http404("The stored email is missing.") from exc
    response = FileResponse(
        stream, content_type="message/rfc822", as_attachment=True, filename=f"email-{row.pk}.eml"
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_POST
@member_required
def email_retry(request, outbound_id: int):
    """Deferred or failed: try again now."""
    row = get_outbound(request, outbound_id, act=True)
    if outbound.retry_now(row):
        messages.success(request, "Sending again now.")
    else:
        messages.info(request, f"This email is {row.get_status_display().lower()}: nothing to retry.")
    return redirect(tenant_reverse(request.tenant, "outbound:emaillog_detail", row.pk))


@require_POST
@member_required
def email_send_again(request, outbound_id: int):
    """Uncertain: a human checked it did not arrive; send the same message again."""
    row = get_outbound(request, outbound_id, act=True)
    if outbound.send_again(row):
        messages.success(request, "Sending the same email again.")
    else:
        messages.info(request, "Only an email in an uncertain state can be sent again.")
    return redirect(tenant_reverse(request.tenant, "outbound:emaillog_detail", row.pk))


# --- notification templates ---------------------------------------------------------------------------------


class TemplateForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Send this notification")
    subject = forms.CharField(max_length=255)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 12}), help_text=signatures.VARIABLES_HELP)

    def clean_subject(self):
        subject = self.cleaned_data["subject"]
        problem = signatures.check(subject)
        if problem:
            raise forms.ValidationError(problem)
        return subject

    def clean_body(self):
        body = self.cleaned_data["body"]
        problem = signatures.check(body)
        if problem:
            raise forms.ValidationError(problem)
        return body


# Variables only some notifications have, on top of signatures.VARIABLES_HELP.
EXTRA_VARIABLES = {
    NotificationKind.AGENT_REPLY: "{{ message.excerpt }}",
    NotificationKind.ASSIGNED: "{{ actor.name }} (who assigned it)",
    NotificationKind.SLA_BREACH: "{{ sla.target }}, {{ sla.policy }}, {{ sla.due }}",
    NotificationKind.DELIVERY_FAILED: "{{ delivery.recipients }}, {{ delivery.message }}, {{ delivery.advice }}",
}


def _kind(kind: str) -> str:
    if kind not in NotificationKind.values:
        raise Http404("No such template.")
    return kind


@admin_required
def template_list(request):
    from tickets import notifications

    rows = []
    for kind, label in NotificationKind.choices:
        words = notifications.wording(request.tenant, kind)
        rows.append({"kind": kind, "label": label, "wording": words})
    return render(request, "mailboxes/templates.html", {"rows": rows})


@admin_required
def template_edit(request, kind: str):
    from tickets import notifications

    kind = _kind(kind)
    words = notifications.wording(request.tenant, kind)
    initial = {"enabled": words.enabled, "subject": words.subject, "body": words.body}
    form = TemplateForm(request.POST or None, initial=initial)
    if request.method == "POST" and request.POST.get("action") == "reset":
        NotificationTemplate.objects.filter(tenant=request.tenant, kind=kind).delete()
        messages.success(request, "Back to the default wording.")
        return redirect(tenant_reverse(request.tenant, "outbound:template_edit", kind))
    if request.method == "POST" and form.is_valid():
        NotificationTemplate.objects.update_or_create(
            tenant=request.tenant, kind=kind, defaults={**form.cleaned_data, "updated_by": request.user}
        )
        messages.success(request, "Template saved.")
        return redirect(tenant_reverse(request.tenant, "outbound:template_edit", kind))
    preview = _preview(request, words.subject, words.body)
    if kind in EXTRA_VARIABLES:
        form.fields["body"].help_text = f"{signatures.VARIABLES_HELP}, and here also {EXTRA_VARIABLES[kind]}"
    context = {"form": form, "kind": kind, "label": NotificationKind(kind).label, "words": words, **preview}
    return render(request, "mailboxes/templates_edit.html", context)


def _preview(request, subject: str, body: str) -> dict:
    from tickets import notifications

    try:
        rendered = notifications.preview(request.tenant, subject, body, agent=request.user)
    except signatures.TemplateProblem as exc:
        return {"preview_error": str(exc)}
    return {"preview_subject": rendered.subject, "preview_text": rendered.text}


@require_POST
@admin_required
def template_preview(request, kind: str):
    """The live preview (htmx): the posted subject and body rendered with sample values."""
    _kind(kind)
    context = _preview(request, request.POST.get("subject", ""), request.POST.get("body", ""))
    return render(request, "mailboxes/templates_preview.html", context)


# --- my notifications ---------------------------------------------------------------------------------------


class PreferenceForm(forms.ModelForm):
    class Meta:
        model = NotificationPreference
        fields = ["assigned_to_me", "reply_on_my_ticket", "sla_breach", "delivery_failed"]


@member_required
def notification_preferences(request):
    pref = NotificationPreference.objects.filter(tenant=request.tenant, user=request.user).first()
    pref = pref or NotificationPreference(tenant=request.tenant, user=request.user)
    form = PreferenceForm(request.POST or None, instance=pref)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Notification settings saved.")
        return redirect(tenant_reverse(request.tenant, "outbound:notification_preferences"))
    return render(request, "mailboxes/templates_notifications.html", {"form": form})


# --- service levels -----------------------------------------------------------------------------------------


class SlaPolicyForm(forms.ModelForm):
    class Meta:
        model = SlaPolicy
        fields = [
            "name",
            "queue",
            "priority",
            "first_response_minutes",
            "resolution_minutes",
            "business_hours_only",
        ]
        labels = {
            "first_response_minutes": "First response within (minutes)",
            "resolution_minutes": "Solved within (minutes)",
        }
        help_texts = {"queue": "A policy for one queue beats a general one.", "priority": ""}

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["queue"].queryset = Queue.objects.for_tenant(tenant)
        self.fields["queue"].empty_label = "Every queue"
        self.fields["priority"].choices = [("", "Every priority"), *list(self.fields["priority"].choices)[1:]]


class BusinessHoursForm(forms.ModelForm):
    weekdays = forms.TypedMultipleChoiceField(
        coerce=int,
        choices=[(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="No day ticked: SLA clocks run around the clock.",
    )

    class Meta:
        model = BusinessHours
        fields = ["weekdays", "start", "end", "timezone"]
        widgets = {
            "start": forms.TimeInput(attrs={"type": "time"}),
            "end": forms.TimeInput(attrs={"type": "time"}),
        }

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] <= data["start"]:
            self.add_error("end", "The day must end after it starts.")
        tz = data.get("timezone")
        if tz:
            import zoneinfo

            try:
                zoneinfo.ZoneInfo(tz)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                self.add_error("timezone", "Unknown time zone, e.g. Europe/Berlin.")
        return data


@admin_required
def sla_settings(request):
    """SLA policies and the business hours their clocks run in."""
    hours = BusinessHours.objects.filter(tenant=request.tenant).first() or BusinessHours(
        tenant=request.tenant
    )
    hours_form = BusinessHoursForm(
        request.POST if request.POST.get("form") == "hours" else None, instance=hours
    )
    policy_form = SlaPolicyForm(
        request.POST if request.POST.get("form") == "policy" else None, tenant=request.tenant
    )
    if request.method == "POST":
        form = hours_form if request.POST.get("form") == "hours" else policy_form
        if form.is_valid():
            obj = form.save(commit=False)
            obj.tenant = request.tenant
            obj.save()
            messages.success(request, "Saved.")
            return redirect(tenant_reverse(request.tenant, "outbound:sla"))
    context = {
        "policies": SlaPolicy.objects.for_tenant(request.tenant).select_related("queue"),
        "hours_form": hours_form,
        "policy_form": policy_form,
    }
    return render(request, "mailboxes/templates_sla.html", context)


@require_POST
@admin_required
def sla_delete(request, policy_id: int):
    SlaPolicy.objects.for_tenant(request.tenant).filter(pk=policy_id).delete()
    messages.success(request, "Policy deleted.")
    return redirect(tenant_reverse(request.tenant, "outbound:sla"))
