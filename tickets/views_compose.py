"""The ticket page's composer: reply, reply all, forward (notes live in views.add_note).

Thin views: the access helper, a form, one call into `tickets.replies` or `tickets.canned`, a render.
A reply is refused (not sent) when a customer wrote since the agent opened the ticket, unless they confirm.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.views.decorators.http import require_GET, require_POST

from accounts.access import member_required
from helpdesk.widget_html import WIDGETS, preloaded_choices
from mailboxes import mime
from mailboxes.errors import MailError
from mailboxes.models import Mailbox
from mailboxes.smtp_errors import MessageTooLarge
from tickets import canned, notifications, replies
from tickets.access import can_edit, get_ticket, visible_mailbox_list
from tickets.models import Attachment, CannedAnswer, Message, MessageKind, Status, Ticket

KIND_CHOICES = [("reply", "Reply"), ("reply_all", "Reply all"), ("forward", "Forward")]
THEN_CHOICES = [("", "Send"), (Status.PENDING, "Send and set pending"), (Status.SOLVED, "Send and solve")]
COLLISION = "A new message arrived since you opened this ticket."


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        items = data if isinstance(data, list | tuple) else ([data] if data else [])
        return [super(MultipleFileField, self).clean(item, initial) for item in items]


def _addresses(value: str) -> list[str]:
    """Comma- or newline-separated addresses, each checked; the error names the bad one in plain words."""
    parts = [p.strip() for p in value.replace("\n", ",").replace(";", ",").split(",") if p.strip()]
    try:
        return mime.format_addresses(mime.parse_addresses(parts))
    except MailError as error:
        raise ValidationError(error.message) from error


class ComposeForm(forms.Form):
    default_renderer = WIDGETS  # the From select in Python, not a template per option

    kind = forms.ChoiceField(choices=KIND_CHOICES, initial="reply", widget=forms.HiddenInput)
    to = forms.CharField(required=False, max_length=4000, label="To")
    cc = forms.CharField(required=False, max_length=4000, label="Cc")
    bcc = forms.CharField(required=False, max_length=4000, label="Bcc")
    mailbox = forms.ModelChoiceField(
        queryset=Mailbox.objects.none(), label="From", empty_label=None, required=False
    )
    body = forms.CharField(
        max_length=100000,
        widget=forms.Textarea(attrs={"rows": 8, "placeholder": "Write your reply…"}),
        error_messages={"required": "Write something first."},
    )
    files = MultipleFileField(required=False, label="Attach files")
    canned_files = forms.TypedMultipleChoiceField(
        coerce=int, required=False, widget=forms.MultipleHiddenInput
    )
    seen = forms.IntegerField(required=False, widget=forms.HiddenInput)
    force = forms.BooleanField(required=False, widget=forms.HiddenInput)
    then = forms.ChoiceField(choices=THEN_CHOICES, required=False)

    def __init__(self, *args, membership, ticket: Ticket, **kwargs):
        super().__init__(*args, **kwargs)
        self.membership = membership
        self.ticket = ticket
        self.fields["mailbox"].queryset = Mailbox.objects.visible_to(membership).active().order_by("name")
        # Which canned files may ride along: those of answers the member may use (checked again on send).
        self.fields["canned_files"].choices = (
            [(v, v) for v in self.data.getlist("canned_files")] if self.data else []
        )

    def address_fields(self) -> list:
        """To, Cc and Bcc, which the composer lays out alike."""
        return [self["to"], self["cc"], self["bcc"]]

    def clean_to(self):
        return _addresses(self.cleaned_data["to"])

    def clean_cc(self):
        return _addresses(self.cleaned_data["cc"])

    def clean_bcc(self):
        return _addresses(self.cleaned_data["bcc"])

    def clean_files(self):
        files = self.cleaned_data["files"]
        canned.check_files(files)  # too many or too large: a ValidationError in plain words
        return files

    def clean_canned_files(self):
        rows = []
        for pk in self.cleaned_data["canned_files"]:
            item = canned.get_attachment(self.membership, pk)
            if item is None:
                raise ValidationError("One of the canned answer's files is no longer available.")
            rows.append(item)
        return rows

    def clean(self):
        data = super().clean()
        if not self.errors and not data.get("to") and not data.get("cc") and not data.get("bcc"):
            self.add_error("to", "Add at least one recipient.")
        return data

    def attachments(self) -> list:
        """Uploaded files plus the canned answers' files (reused blobs, as unsaved Attachment rows)."""
        reused = [
            Attachment(
                tenant_id=self.ticket.tenant_id,
                filename=a.filename,
                content_type=a.content_type,
                size=a.size,
                sha256=a.sha256,
                storage_key=a.storage_key,
            )
            for a in self.cleaned_data["canned_files"]
        ]
        return [*self.cleaned_data["files"], *reused]


def _newest_id(ticket: Ticket, *, inbound_only: bool = False) -> int:
    qs = Message.objects.filter(tenant_id=ticket.tenant_id, ticket=ticket)
    if inbound_only:
        qs = qs.filter(kind=MessageKind.INBOUND)
    return qs.order_by("-pk").values_list("pk", flat=True).first() or 0


def _recipients(ticket: Ticket, entries: list[Message]) -> dict[str, str]:
    """Prefills per tab: Reply goes to the requester, Reply all adds everyone on the last inbound mail.

    `entries` is the thread the page shows (thread.for_display), so the last inbound mail is the one the agent
    reads above the composer.
    """
    own = {e.lower() for e in Mailbox.objects.for_tenant(ticket.tenant).values_list("email", flat=True)}
    requester = ticket.requester.email if ticket.requester_id else ""
    last = max((m for m in entries if m.kind == MessageKind.INBOUND), key=lambda m: m.pk, default=None)
    others: list[str] = []
    if last is not None:
        for raw in [last.from_addr, *(last.to or []), *(last.cc or [])]:
            try:
                addresses = mime.parse_addresses([raw]) if raw else []
            except MailError:
                continue
            for a in addresses:
                spec = a.addr_spec.lower()
                if spec in own or spec == requester.lower() or spec in (o.lower() for o in others):
                    continue
                others.append(a.addr_spec)
    return {"reply_to": requester, "all_cc": ", ".join(others)}


def compose_form(request, ticket: Ticket, entries: list[Message], prefill: dict) -> ComposeForm | None:
    """An empty composer for the ticket page (None for light agents: they only write notes).

    `seen` is the newest message of the thread shown (`entries`): a reply is checked against what the agent saw.
    """
    if not can_edit(request.membership):
        return None
    box = notifications.mailbox_for(ticket.tenant, ticket)
    return ComposeForm(
        membership=request.membership,
        ticket=ticket,
        initial={
            "kind": "reply",
            "to": prefill["reply_to"],
            "mailbox": box.pk if box else None,
            "seen": max((m.pk for m in entries), default=0),
        },
    )


def composer_context(
    request, ticket: Ticket, entries: list[Message], form: ComposeForm | None = None, **extra
) -> dict:
    """The composer of the ticket page showing `entries` (thread.for_display): a new form unless given one."""
    prefill = _recipients(ticket, entries) if can_edit(request.membership) else {}
    form = form if form is not None else compose_form(request, ticket, entries, prefill)
    chosen = []
    if form is not None:
        # The From choices (the field's queryset: visible, active, by name) from the request's list of visible
        # mailboxes, which Ticket.objects.visible_to loaded already, instead of two queries of their own.
        mailbox = form.fields["mailbox"]
        usable = [box for box in visible_mailbox_list(request.membership) if not box.is_disabled]
        mailbox.choices = preloaded_choices(mailbox, usable)
        if form.is_bound:
            for value in form.data.getlist("canned_files"):
                item = canned.get_attachment(request.membership, int(value)) if value.isdigit() else None
                if item is not None:
                    chosen.append(item)
    return {
        "compose_form": form,
        "compose_prefill": prefill if form is not None else {},
        "compose_max": filesizeformat(settings.ATTACHMENT_MAX_BYTES),
        "compose_max_bytes": settings.ATTACHMENT_MAX_BYTES,
        "canned_chosen": chosen,
        **extra,
    }


def _is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _rerender(request, ticket: Ticket, form: ComposeForm, *, status: int, **extra):
    """The ticket page again, with the composer's errors or the collision warning.

    A plain post reloads the page, and the browser forgets the chosen files: the page says so. An htmx post
    swaps only the regions marked `hx-swap-oob` here (field errors, `seen`, the thread after a collision) and
    the alerts; the rest of the form, its files included, stays as the agent left it.
    """
    from tickets.views import detail_context

    if _is_htmx(request):
        extra["composer_oob"] = True
    elif form.files.getlist("files"):
        extra.setdefault("refile", True)
    context = detail_context(request, ticket)
    context.update(composer_context(request, ticket, context["entries"], form, **extra))
    return render(request, "tickets/detail.html", context, status=status)


def _kind(form: ComposeForm) -> str:
    return "forward" if form.cleaned_data["kind"] == "forward" else "reply"


@require_POST
@member_required
def reply(request, number: int):
    """Send a reply or forward; Send / Send and set pending / Send and solve."""
    ticket = get_ticket(request, number, write=True)
    form = ComposeForm(request.POST, request.FILES, membership=request.membership, ticket=ticket)
    if not form.is_valid():
        return _rerender(request, ticket, form, status=400)
    data = form.cleaned_data
    if not data["force"] and _newest_id(ticket, inbound_only=True) > (data["seen"] or 0):
        newest = _newest_id(ticket)
        return _rerender(request, ticket, form, status=409, collision=COLLISION, seen_now=newest)
    try:
        message = replies.send_reply(
            ticket,
            author=request.user,
            to=data["to"],
            cc=data["cc"],
            bcc=data["bcc"],
            body=data["body"],
            attachments=form.attachments(),
            mailbox=data["mailbox"],
            kind=_kind(form),
            status_after=data["then"] or None,
        )
    except MailError as error:
        form.add_error(
            "files" if isinstance(error, MessageTooLarge) else None, f"{error.message} {error.advice}"
        )
        return _rerender(request, ticket, form, status=400)
    done = {
        "": "Reply sent.",
        Status.PENDING: "Reply sent; the ticket is pending.",
        Status.SOLVED: "Reply sent; the ticket is solved.",
    }
    flash.success(request, done[data["then"]] if _kind(form) == "reply" else "Forwarded.")
    sent = f"{ticket.get_absolute_url()}#m-{message.pk}"
    if _is_htmx(request):  # the browser loads the page itself (js/composer.js), as after a plain post
        response = HttpResponse(status=204)
        response["HX-Redirect"] = sent
        return response
    return HttpResponseRedirect(sent)


@require_POST
@member_required
def preview(request, number: int):
    """htmx: exactly what would be sent, from replies.preview (addresses, subject, the text part, escaped)."""
    ticket = get_ticket(request, number, write=True)
    form = ComposeForm(request.POST, request.FILES, membership=request.membership, ticket=ticket)
    context = {"ticket": ticket, "form": form}
    if form.is_valid():
        data = form.cleaned_data
        try:
            context["draft"] = replies.preview(
                ticket,
                author=request.user,
                to=data["to"],
                cc=data["cc"],
                bcc=data["bcc"],
                body=data["body"],
                attachments=form.attachments(),
                mailbox=data["mailbox"],
                kind=_kind(form),
            )
        except MailError as error:
            context["error"] = error
    return render(request, "tickets/_composer_preview.html", context)


@require_GET
@member_required
def canned_search(request, number: int):
    """htmx: the canned answers the member may use, matching what they type."""
    ticket = get_ticket(request, number, write=True)
    answers = canned.search(request.membership, request.GET.get("q", ""), mailbox=ticket.mailbox)
    return render(request, "tickets/_composer_canned.html", {"ticket": ticket, "answers": answers})


@require_GET
@member_required
def canned_insert(request, number: int, answer_id: int):
    """The answer's body rendered for this ticket and agent, and its files (the composer attaches them)."""
    ticket = get_ticket(request, number, write=True)
    answer = CannedAnswer.objects.available_to(request.membership).filter(pk=answer_id).first()
    if answer is None:
        raise Http404("No such canned answer.")
    box = notifications.mailbox_for(ticket.tenant, ticket)
    body = canned.render(answer, ticket=ticket, agent=request.user, mailbox=box)
    files = [
        {"id": a.pk, "filename": a.filename, "size": filesizeformat(a.size)} for a in answer.attachments.all()
    ]
    return JsonResponse({"body": body, "files": files})
