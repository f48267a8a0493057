"""Ticket settings pages (admins only; agents get 403, outsiders 404): queues, canned answers, tags, close
reasons and the auto-close rule. The canned-answer attachment download is open to members who may use it."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch
from django.views.decorators.http import require_POST

from accounts.access import admin_required, member_required, tenant_reverse
from mailboxes import blobs
from tickets import autoclose, canned
from tickets import tags as tag_rules
from tickets.forms_admin import (
    AutoCloseForm,
    CannedAnswerForm,
    CloseReasonForm,
    QueueForm,
    TagMergeForm,
    TagNameForm,
)
from tickets.models import (
    OPEN_STATUSES,
    AutoCloseRule,
    CannedAnswer,
    CannedAnswerAttachment,
    CloseReason,
    Queue,
    Tag,
)

# The SLA policies and business hours pages belong to the outbound issue; linked when they exist.
SLA_URL_NAMES = ("sla:policies", "sla:list", "tickets_sla:policies", "tickets:sla_policies")


# --- access: one function per object, filtered by tenant, 404 otherwise --------------------------------------


def _get(qs, pk: int, what: str):
    obj = qs.filter(pk=pk).first()
    if obj is None:
        raise Http404(f"No such {what}.")
    return obj


def get_queue(request: HttpRequest, queue_id: int) -> Queue:
    return _get(Queue.objects.for_tenant(request.tenant), queue_id, "queue")


def get_canned_answer(request: HttpRequest, answer_id: int) -> CannedAnswer:
    return _get(CannedAnswer.objects.for_tenant(request.tenant), answer_id, "canned answer")


def get_canned_attachment(
    request: HttpRequest, answer: CannedAnswer, attachment_id: int
) -> CannedAnswerAttachment:
    return _get(CannedAnswerAttachment.objects.filter(canned_answer=answer), attachment_id, "attachment")


def get_tag(request: HttpRequest, tag_id: int) -> Tag:
    return _get(Tag.objects.for_tenant(request.tenant), tag_id, "tag")


def get_close_reason(request: HttpRequest, reason_id: int) -> CloseReason:
    return _get(CloseReason.objects.for_tenant(request.tenant), reason_id, "close reason")


def _settings_context(request: HttpRequest, tab: str, **context) -> dict:
    sla_url = None
    for name in SLA_URL_NAMES:
        try:
            sla_url = tenant_reverse(request.tenant, name)
            break
        except NoReverseMatch:
            continue
    return {"tab": tab, "sla_url": sla_url, **context}


def _back(request: HttpRequest, name: str, *args) -> HttpResponse:
    return redirect(tenant_reverse(request.tenant, f"ticket_settings:{name}", *args))


# --- queues ---------------------------------------------------------------------------------------------------


@admin_required
def queue_list(request):
    queues = (
        Queue.objects.for_tenant(request.tenant)
        .select_related("default_mailbox")
        .annotate(
            member_count=Count("members", distinct=True),
            open_count=Count("tickets", filter=Q(tickets__status__in=OPEN_STATUSES), distinct=True),
        )
    )
    return render(request, "tickets/admin/queues.html", _settings_context(request, "queues", queues=queues))


@admin_required
def queue_edit(request, queue_id: int | None = None):
    queue = get_queue(request, queue_id) if queue_id else Queue(tenant=request.tenant)
    form = QueueForm(request.POST or None, instance=queue, tenant=request.tenant)
    if request.method == "POST" and form.is_valid():
        queue = form.save()
        messages.success(request, f"Queue “{queue.name}” saved.")
        return _back(request, "queues")
    context = _settings_context(request, "queues", form=form, queue=queue)
    return render(request, "tickets/admin/queue_form.html", context)


@require_POST
@admin_required
def queue_delete(request, queue_id: int):
    queue = get_queue(request, queue_id)
    tickets = queue.tickets.count()
    queue.delete()
    note = f" Its {tickets} ticket{'s' if tickets != 1 else ''} now have no queue." if tickets else ""
    messages.success(request, f"Queue “{queue.name}” deleted.{note}")
    return _back(request, "queues")


# --- canned answers -------------------------------------------------------------------------------------------


@admin_required
def canned_list(request):
    answers = (
        CannedAnswer.objects.for_tenant(request.tenant)
        .select_related("mailbox")
        .annotate(attachment_count=Count("attachments"))
    )
    context = _settings_context(request, "canned", answers=answers)
    return render(request, "tickets/admin/canned_list.html", context)


@admin_required
def canned_edit(request, answer_id: int | None = None):
    answer = get_canned_answer(request, answer_id) if answer_id else CannedAnswer(tenant=request.tenant)
    form = CannedAnswerForm(
        request.POST or None, request.FILES or None, instance=answer, tenant=request.tenant
    )
    if request.method == "POST" and form.is_valid():
        answer = canned.save_answer(
            form.save(commit=False), files=form.cleaned_data["files"], actor=request.user
        )
        messages.success(request, f"Canned answer “{answer.key}” saved.")
        return _back(request, "canned_edit", answer.pk)
    attachments = answer.attachments.all() if answer.pk else []
    context = _settings_context(
        request, "canned", form=form, answer=answer, attachments=attachments, variables=canned.VARIABLES
    )
    return render(request, "tickets/admin/canned_form.html", context)


@require_POST
@admin_required
def canned_delete(request, answer_id: int):
    answer = get_canned_answer(request, answer_id)
    canned.delete_answer(answer)
    messages.success(request, f"Canned answer “{answer.key}” deleted.")
    return _back(request, "canned")


@require_POST
@admin_required
def canned_attachment_delete(request, answer_id: int, attachment_id: int):
    answer = get_canned_answer(request, answer_id)
    attachment = get_canned_attachment(request, answer, attachment_id)
    canned.remove_attachment(attachment)
    messages.success(request, f"“{attachment.filename}” removed.")
    return _back(request, "canned_edit", answer.pk)


@member_required
def canned_attachment(request, attachment_id: int):
    """Download a canned answer's file: any member who may use the answer (agents preview it in the composer)."""
    attachment = canned.get_attachment(request.membership, attachment_id)
    if attachment is None:
        raise Http404("No such attachment.")
    response = FileResponse(
        blobs.open_blob(attachment.storage_key),
        as_attachment=True,
        filename=attachment.filename,
        content_type=attachment.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


# --- tags -----------------------------------------------------------------------------------------------------


def _tags_page(request, *, form=None, row_errors=None, status: int = 200):
    errors = row_errors or {}
    rows = [(row, errors.get(row.tag.pk)) for row in tag_rules.rows(request.tenant)]
    context = _settings_context(request, "tags", rows=rows, form=form or TagNameForm())
    return render(request, "tickets/admin/tags.html", context, status=status)


@admin_required
def tag_list(request):
    if request.method != "POST":
        return _tags_page(request)
    form = TagNameForm(request.POST)
    if form.is_valid():
        try:
            tag = tag_rules.create(request.tenant, form.cleaned_data["name"])
        except ValidationError as exc:
            form.add_error("name", exc.messages[0])
        else:
            messages.success(request, f"Tag “{tag.name}” added.")
            return _back(request, "tags")
    return _tags_page(request, form=form, status=400)


@require_POST
@admin_required
def tag_rename(request, tag_id: int):
    tag = get_tag(request, tag_id)
    form = TagNameForm(request.POST, prefix=f"tag{tag.pk}")
    if form.is_valid():
        try:
            tag_rules.rename(tag, form.cleaned_data["name"])
        except ValidationError as exc:
            form.add_error("name", exc.messages[0])
        else:
            messages.success(request, f"Tag renamed to “{tag.name}”.")
            return _back(request, "tags")
    return _tags_page(request, row_errors={tag.pk: form.errors.get("name")}, status=400)


@require_POST
@admin_required
def tag_merge(request, tag_id: int):
    tag = get_tag(request, tag_id)
    form = TagMergeForm(request.POST, tag=tag, prefix=f"merge{tag.pk}")
    if not form.is_valid():
        return _tags_page(request, row_errors={tag.pk: form.errors.get("target")}, status=400)
    target = form.cleaned_data["target"]
    moved = tag_rules.merge(tag, target)
    messages.success(
        request, f"“{tag.name}” merged into “{target.name}” ({moved} ticket{'s' if moved != 1 else ''})."
    )
    return _back(request, "tags")


@require_POST
@admin_required
def tag_delete(request, tag_id: int):
    tag = get_tag(request, tag_id)
    count = tag_rules.delete(tag)
    messages.success(request, f"Tag “{tag.name}” deleted; {count} ticket{'s' if count != 1 else ''} lost it.")
    return _back(request, "tags")


# --- close reasons and the auto-close rule --------------------------------------------------------------------


def _closing_page(request, *, form=None, row_errors=None, status: int = 200):
    errors = row_errors or {}
    reasons = [(r, errors.get(r.pk)) for r in CloseReason.objects.for_tenant(request.tenant)]
    context = _settings_context(
        request, "closing", reasons=reasons, form=form or CloseReasonForm(tenant=request.tenant)
    )
    return render(request, "tickets/admin/close_reasons.html", context, status=status)


@admin_required
def close_reasons(request):
    if request.method != "POST":
        return _closing_page(request)
    form = CloseReasonForm(request.POST, tenant=request.tenant)
    if form.is_valid():
        reason = form.save()
        messages.success(request, f"Close reason “{reason.name}” added.")
        return _back(request, "close_reasons")
    return _closing_page(request, form=form, status=400)


@require_POST
@admin_required
def close_reason_rename(request, reason_id: int):
    reason = get_close_reason(request, reason_id)
    form = CloseReasonForm(request.POST, instance=reason, tenant=request.tenant, prefix=f"reason{reason.pk}")
    if form.is_valid():
        form.save()
        messages.success(request, f"Close reason renamed to “{reason.name}”.")
        return _back(request, "close_reasons")
    return _closing_page(request, row_errors={reason.pk: form.errors.get("name")}, status=400)


@require_POST
@admin_required
def close_reason_delete(request, reason_id: int):
    reason = get_close_reason(request, reason_id)
    reason.delete()
    messages.success(request, f"Close reason “{reason.name}” deleted. Tickets closed with it keep the text.")
    return _back(request, "close_reasons")


@admin_required
def auto_close(request):
    rule = AutoCloseRule.for_tenant(request.tenant)
    form = AutoCloseForm(request.POST or None, instance=rule)
    if request.method == "POST" and form.is_valid():
        rule = form.save()
        state = f"on: pending tickets are solved after {rule.days} days" if rule.enabled else "off"
        messages.success(request, f"Auto-close is {state}.")
        return _back(request, "auto_close")
    due = autoclose.due_tickets(rule).count() if rule.enabled else None
    context = _settings_context(request, "autoclose", form=form, rule=rule, due=due)
    return render(request, "tickets/admin/auto_close.html", context)
