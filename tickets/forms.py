"""Forms of the ticket area: list filters, the ticket's side panel, notes, bulk actions, merges, contacts."""

from django import forms
from django.http import QueryDict

from accounts.models import Membership, Role
from tickets import lists
from tickets.access import member_list, visible_mailbox_list, visible_queue_list, visible_queues
from tickets.models import Contact, Customer, Priority, Status, Tag


def member_choices(membership: Membership) -> list[tuple[int, str]]:
    """Who tickets can be assigned to: members of the tenant who may answer customers (loaded once per request)."""
    if not hasattr(membership, "_member_choices"):
        membership._member_choices = [
            (m.user_id, m.user.display_name) for m in member_list(membership) if m.role != Role.LIGHT_AGENT
        ]
    return membership._member_choices


def queue_choices(membership: Membership) -> list[tuple[int, str]]:
    return [(q.pk, q.name) for q in visible_queue_list(membership)]


CHECKBOXES = forms.CheckboxSelectMultiple


class TicketFilterForm(forms.Form):
    """The filter bar of a ticket list; read from the query string, so every filter lives in the URL.

    Invalid values are dropped rather than shown as errors: a stale bookmark should still open a list.
    """

    q = forms.CharField(required=False, max_length=200)
    status = forms.MultipleChoiceField(required=False, choices=Status.choices, widget=CHECKBOXES)
    priority = forms.TypedMultipleChoiceField(
        required=False, choices=Priority.choices, coerce=int, widget=CHECKBOXES
    )
    queue = forms.TypedMultipleChoiceField(required=False, coerce=int, widget=CHECKBOXES)
    mailbox = forms.TypedMultipleChoiceField(required=False, coerce=int, widget=CHECKBOXES)
    assignee = forms.TypedMultipleChoiceField(required=False, coerce=int, widget=CHECKBOXES)
    tag = forms.TypedMultipleChoiceField(required=False, coerce=int, widget=CHECKBOXES)
    unread = forms.TypedChoiceField(
        required=False,
        choices=[("", "Read and unread"), ("1", "Unread only"), ("0", "Read only")],
        widget=forms.Select(attrs={"aria-label": "Read or unread"}),
    )
    customer = forms.IntegerField(required=False, min_value=1)
    created_from = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date", "aria-label": "Created from"})
    )
    created_to = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date", "aria-label": "Created until"})
    )
    updated_from = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date", "aria-label": "Updated from"})
    )
    updated_to = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date", "aria-label": "Updated until"})
    )
    sort = forms.ChoiceField(required=False, choices=[(s.key, s.label) for s in lists.SORTS.values()])

    def __init__(self, data: QueryDict, *, membership: Membership):
        super().__init__(data, auto_id="flt-%s")
        self.membership = membership
        self.fields["queue"].choices = [(0, "No queue"), *queue_choices(membership)]
        self.fields["mailbox"].choices = [
            (m.pk, f"{m.key} · {m.name}") for m in visible_mailbox_list(membership)
        ]
        self.fields["assignee"].choices = [(0, "Unassigned"), *member_choices(membership)]
        self.fields["tag"].choices = list(Tag.objects.for_tenant(membership.tenant).values_list("pk", "name"))
        self.is_valid()

    def groups(self) -> list[tuple[str, str, list[tuple[str, str, bool]]]]:
        """(legend, parameter, [(value, label, checked)]) for the checkbox groups of the filter menu.

        Rendered by hand in the template: a widget template per checkbox costs more than the whole list.
        """
        out = []
        for name, legend in (
            ("status", "Status"),
            ("priority", "Priority"),
            ("assignee", "Assignee"),
            ("queue", "Queue"),
            ("mailbox", "Mailbox"),
            ("tag", "Tags"),
        ):
            chosen = {str(v) for v in self.cleaned_data.get(name) or []}
            out.append(
                (
                    legend,
                    name,
                    [(str(v), str(label), str(v) in chosen) for v, label in self.fields[name].choices],
                )
            )
        return out

    def value(self, name: str, default=None):
        return self.cleaned_data.get(name) or default

    def filters(self) -> lists.Filters:
        """The valid part of what was asked for."""
        unread = self.cleaned_data.get("unread")
        return lists.Filters(
            status=self.value("status", []),
            priority=self.value("priority", []),
            queue=self.value("queue", []),
            mailbox=self.value("mailbox", []),
            assignee=self.value("assignee", []),
            tag=self.value("tag", []),
            unread={"1": True, "0": False}.get(unread),
            customer=self.value("customer"),
            created_from=self.value("created_from"),
            created_to=self.value("created_to"),
            updated_from=self.value("updated_from"),
            updated_to=self.value("updated_to"),
            q=(self.value("q", "") or "").strip(),
        )

    @property
    def chosen_sort(self) -> str:
        return self.cleaned_data.get("sort") or lists.DEFAULT_SORT

    def active(self, customer_name: str | None = None) -> list[tuple[str, str, str]]:
        """(label, query parameter, value) of each active filter, for the removable chips."""
        chips = []
        for name in ("status", "priority", "queue", "mailbox", "assignee", "tag"):
            labels = dict((str(k), v) for k, v in self.fields[name].choices)
            for value in self.cleaned_data.get(name) or []:
                prefix = {"queue": "Queue", "mailbox": "Mailbox", "assignee": "Assignee", "tag": "Tag"}.get(
                    name, ""
                )
                text = labels.get(str(value), str(value))
                chips.append((f"{prefix}: {text}" if prefix else str(text), name, str(value)))
        unread = self.cleaned_data.get("unread")
        if unread in ("0", "1"):
            chips.append(("Unread" if unread == "1" else "Read", "unread", unread))
        if self.cleaned_data.get("customer"):
            chips.append((f"Customer: {customer_name or self.cleaned_data['customer']}", "customer", ""))
        for name, label in (
            ("created_from", "Created from"),
            ("created_to", "Created until"),
            ("updated_from", "Updated from"),
            ("updated_to", "Updated until"),
        ):
            if self.cleaned_data.get(name):
                chips.append((f"{label} {self.cleaned_data[name]:%b %-d, %Y}", name, ""))
        if (self.cleaned_data.get("q") or "").strip():
            chips.append((f"“{self.cleaned_data['q'].strip()}”", "q", ""))
        return chips


class TicketFieldsForm(forms.Form):
    """The ticket's side panel: everything an agent changes about a ticket besides its title."""

    status = forms.ChoiceField(choices=Status.choices)
    priority = forms.TypedChoiceField(choices=Priority.choices, coerce=int)
    queue = forms.ModelChoiceField(queryset=None, required=False, empty_label="No queue")
    assignee = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    tags = forms.ModelMultipleChoiceField(queryset=None, required=False, widget=CHECKBOXES)

    def __init__(self, *args, membership: Membership, ticket=None, **kwargs):
        if ticket is not None and not args and "initial" not in kwargs:
            kwargs["initial"] = {
                "status": ticket.status,
                "priority": ticket.priority,
                "queue": ticket.queue_id,
                "assignee": ticket.assignee_id or "",
                "tags": [t.pk for t in ticket.tags.all()],
            }
        kwargs.setdefault("auto_id", "tf-%s")
        super().__init__(*args, **kwargs)
        self.membership = membership
        self.fields["queue"].queryset = visible_queues(membership).order_by("name")
        self.fields["assignee"].choices = [("", "Unassigned"), *member_choices(membership)]
        self.fields["tags"].queryset = Tag.objects.for_tenant(membership.tenant)

    def changes(self) -> dict:
        """Field values for history.change_ticket, with the assignee as a user."""
        data = dict(self.cleaned_data)
        assignee_id = data.pop("assignee")
        data["assignee"] = (
            Membership.objects.for_tenant(self.membership.tenant)
            .select_related("user")
            .get(user_id=assignee_id)
            .user
            if assignee_id
            else None
        )
        return data


class TitleForm(forms.Form):
    title = forms.CharField(max_length=998, strip=True)


class NoteForm(forms.Form):
    body = forms.CharField(
        label="Internal note",
        max_length=20000,
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "Write an internal note. Customers never see it."}
        ),
        error_messages={"required": "Write something first."},
    )


class NewTagForm(forms.Form):
    name = forms.CharField(max_length=60, strip=True)


class BulkForm(forms.Form):
    """An action on the tickets ticked in a list."""

    ACTIONS = [
        ("assign", "Assign"),
        ("status", "Change status"),
        ("tag", "Add tag"),
        ("queue", "Move to queue"),
        ("merge", "Merge"),
        ("read", "Mark read"),
        ("unread", "Mark unread"),
    ]
    action = forms.ChoiceField(choices=ACTIONS)
    ids = forms.TypedMultipleChoiceField(
        coerce=int, error_messages={"required": "Select at least one ticket."}
    )
    assignee = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    status = forms.ChoiceField(required=False, choices=[("", "—"), *Status.choices])
    tag = forms.CharField(required=False, max_length=60)
    queue = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    next = forms.CharField(required=False)

    def __init__(self, *args, membership: Membership, **kwargs):
        super().__init__(*args, **kwargs)
        # The ids are checked against what the member may see when the tickets are loaded.
        self.fields["ids"].choices = [(v, v) for v in (self.data.getlist("ids") if self.data else [])]
        self.fields["assignee"].choices = [("", "—"), (0, "Unassigned"), *member_choices(membership)]
        self.fields["queue"].choices = [("", "—"), (0, "No queue"), *queue_choices(membership)]

    def clean(self):
        data = super().clean()
        action = data.get("action")
        needs = {"assign": "assignee", "status": "status", "tag": "tag", "queue": "queue"}.get(action)
        if needs and data.get(needs) in (None, ""):
            self.add_error(needs, "Choose a value for this action.")
        if action == "merge" and len(data.get("ids") or []) < 2:
            self.add_error("ids", "Select at least two tickets to merge.")
        return data


class MergeForm(forms.Form):
    target = forms.CharField(
        label="Merge into ticket",
        max_length=40,
        widget=forms.TextInput(attrs={"placeholder": "Ticket number, e.g. 1042", "inputmode": "numeric"}),
    )

    def clean_target(self) -> int:
        from tickets.search import ticket_number

        number = ticket_number(self.cleaned_data["target"])
        if number is None:
            raise forms.ValidationError("Enter a ticket number, like 1042.")
        return number


class ContactForm(forms.ModelForm):
    class Meta:
        model = Contact
        fields = ["name", "phone", "customer", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = Customer.objects.for_tenant(tenant)
        self.fields["customer"].empty_label = "No customer"


class ContactMergeForm(forms.Form):
    duplicate = forms.EmailField(
        label="Merge a duplicate into this contact",
        widget=forms.EmailInput(attrs={"placeholder": "The duplicate's email address"}),
    )


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = ["name", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}


class NewCustomerForm(forms.Form):
    name = forms.CharField(max_length=200)
    domains = forms.CharField(
        required=False,
        max_length=2000,
        help_text="Email domains of this customer, separated by commas. New contacts from them are linked.",
        widget=forms.TextInput(attrs={"placeholder": "example.com, example.co.uk"}),
    )

    def clean_domains(self) -> list[str]:
        return [
            d for d in (p.strip() for p in self.cleaned_data["domains"].replace(";", ",").split(",")) if d
        ]


class DomainForm(forms.Form):
    domain = forms.CharField(max_length=253, widget=forms.TextInput(attrs={"placeholder": "example.com"}))
