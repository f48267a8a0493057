"""Forms of the ticket settings pages (admins: queues, canned answers, tags, close reasons, auto-close) and of
the reports (the date range)."""

import re

from django import forms
from django.core.exceptions import ValidationError

from accounts.models import Membership, Tenant
from mailboxes.models import Mailbox
from tickets import canned
from tickets import tags as tag_rules
from tickets.models import AutoCloseRule, CannedAnswer, CloseReason, Queue, RoutingMode, Tag

MAX_AWAY_TIMEOUT = 7 * 24 * 60


class MemberChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Membership) -> str:
        return obj.user.display_name


class QueueForm(forms.ModelForm):
    class Meta:
        model = Queue
        fields = [
            "name",
            "default_mailbox",
            "members",
            "restricted",
            "routing",
            "away_timeout_minutes",
            "replies_first",
        ]
        labels = {
            "default_mailbox": "Default mailbox",
            "restricted": "Only members (and admins) see this queue's tickets",
            "routing": "New tickets go to",
            "away_timeout_minutes": "Return tickets of away agents after (minutes)",
            "replies_first": "Sort customer replies above new tickets",
        }
        help_texts = {
            "restricted": "Agents outside the queue do not see its tickets at all.",
            "default_mailbox": "Replies to tickets of this queue are sent from it unless the ticket came in elsewhere.",
            "routing": "Automatic modes assign new tickets among the members who are available.",
            "away_timeout_minutes": "When an agent stays away this long, their open tickets go back to the queue. "
            "0 keeps them with the agent.",
            "replies_first": "Customers who answered you come before tickets nobody has answered yet.",
        }
        field_classes = {"members": MemberChoiceField}
        widgets = {"members": forms.CheckboxSelectMultiple, "routing": forms.RadioSelect}

    def __init__(self, *args, tenant: Tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.fields["default_mailbox"].queryset = Mailbox.objects.for_tenant(tenant)
        self.fields["default_mailbox"].empty_label = "The mailbox the ticket came in through"
        self.fields["members"].queryset = (
            Membership.objects.for_tenant(tenant).select_related("user").order_by("user__name", "user__email")
        )
        self.fields["away_timeout_minutes"].widget.attrs.update(min=0, max=MAX_AWAY_TIMEOUT, step=5)

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        taken = Queue.objects.for_tenant(self.tenant).filter(name__iexact=name)
        if self.instance.pk:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError(f"There is already a queue called “{name}”.")
        return name

    def clean_away_timeout_minutes(self) -> int:
        minutes = self.cleaned_data["away_timeout_minutes"]
        if minutes > MAX_AWAY_TIMEOUT:
            raise ValidationError("Use at most a week (10080 minutes).")
        return minutes

    def clean(self):
        data = super().clean()
        if data.get("routing") in (RoutingMode.ROUND_ROBIN, RoutingMode.FEWEST_OPEN) and not data.get(
            "members"
        ):
            self.add_error("members", "Automatic assignment needs at least one member in the queue.")
        return data

    def save(self, commit: bool = True) -> Queue:
        self.instance.tenant = self.tenant
        return super().save(commit=commit)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files from one input (Django's recipe): cleans to a list."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, (list, tuple)):
            return [super(MultipleFileField, self).clean(d, initial) for d in data if d]
        return [super().clean(data, initial)] if data else []


KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class CannedAnswerForm(forms.ModelForm):
    files = MultipleFileField(required=False, label="Attach files")

    class Meta:
        model = CannedAnswer
        fields = ["key", "title", "mailbox", "body"]
        labels = {"mailbox": "Only for mailbox"}
        widgets = {"body": forms.Textarea(attrs={"rows": 10})}

    def __init__(self, *args, tenant: Tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.fields["mailbox"].queryset = Mailbox.objects.for_tenant(tenant)
        self.fields["mailbox"].empty_label = "Every mailbox"
        self.fields["body"].help_text = "Variables such as {{ contact.first_name }} are listed on the right."
        self.fields["key"].widget.attrs.update(autocomplete="off", spellcheck="false")

    def clean_key(self) -> str:
        key = self.cleaned_data["key"].strip().lower()
        if not KEY_RE.match(key):
            raise ValidationError(
                "Use lowercase letters, digits, dashes and underscores, e.g. “refund-policy”."
            )
        taken = CannedAnswer.objects.for_tenant(self.tenant).filter(key=key)
        if self.instance.pk:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError(f"Another answer already uses the key “{key}”.")
        return key

    def clean_body(self) -> str:
        body = self.cleaned_data["body"]
        problem = canned.check_body(body)
        if problem:
            raise ValidationError(problem)
        return body

    def clean_files(self) -> list:
        files = self.cleaned_data.get("files") or []
        already = self.instance.attachments.count() if self.instance.pk else 0
        canned.check_files(files, already=already)
        return files

    def save(self, commit: bool = True) -> CannedAnswer:
        self.instance.tenant = self.tenant
        return super().save(commit=commit)


class TagNameForm(forms.Form):
    name = forms.CharField(max_length=60, label="Name")

    def clean_name(self) -> str:
        return tag_rules.clean_name(self.cleaned_data["name"])


class TagMergeForm(forms.Form):
    target = forms.ModelChoiceField(
        queryset=Tag.objects.none(), label="Merge into", empty_label="Choose a tag"
    )

    def __init__(self, *args, tag: Tag, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].queryset = Tag.objects.for_tenant(tag.tenant_id).exclude(pk=tag.pk)


class CloseReasonForm(forms.ModelForm):
    class Meta:
        model = CloseReason
        fields = ["name"]
        labels = {"name": "Reason"}

    def __init__(self, *args, tenant: Tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        taken = CloseReason.objects.for_tenant(self.tenant).filter(name__iexact=name)
        if self.instance.pk:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError(f"“{name}” is already a close reason.")
        return name

    def save(self, commit: bool = True) -> CloseReason:
        self.instance.tenant = self.tenant
        return super().save(commit=commit)


class AutoCloseForm(forms.ModelForm):
    days = forms.IntegerField(
        min_value=1,
        max_value=365,
        label="Days without an answer",
        help_text="Counted from the last message on the ticket, usually your reply.",
    )

    class Meta:
        model = AutoCloseRule
        fields = ["enabled", "days", "reason"]
        labels = {"enabled": "Solve pending tickets automatically", "reason": "Close reason"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].queryset = CloseReason.objects.for_tenant(self.instance.tenant_id)
        self.fields["reason"].empty_label = "No reply from the customer (default)"
        self.fields["days"].widget.attrs.update(min=1, max=365)


class ReportPeriodForm(forms.Form):
    """The reports' date range (in the query string); empty means the last 30 days."""

    start = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    days = forms.IntegerField(required=False, min_value=1, max_value=366, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            self.add_error("end", "The end date is before the start date.")
        return data
