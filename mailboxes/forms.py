"""Forms of the mailbox settings: manual setup, the detail page's sections, copy, delete, email defaults, the
tenant's own OAuth apps.

Password fields are never filled from the database (nothing secret goes back to the browser); an empty
password field on an existing mailbox means "unchanged".
"""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError

from accounts.access import tenant_reverse
from accounts.models import Membership
from mailboxes import signatures
from mailboxes.lifecycle import unique_key
from mailboxes.models import (
    AfterImport,
    EmailSettings,
    Mailbox,
    OAuthApp,
    Provider,
    Security,
    Visibility,
    key_validator,
)

DISCOVERY_FIELDS = ("imap_host", "imap_port", "imap_security", "smtp_host", "smtp_port", "smtp_security")
PASSWORD_UNCHANGED_HELP = "Leave empty to keep the saved password."
CONTENT_RE = re.compile(r"{{\s*content\s*}}")


def password_field(label: str, *, required: bool = False, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        strip=False,
        help_text=help_text,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )


def check_template(value: str, *, html: bool = False) -> str:
    problem = signatures.check(value or "", html=html)
    if problem:
        raise ValidationError(problem)
    return value


class TenantMailboxForm(forms.ModelForm):
    """A ModelForm that knows the tenant (for unique address and key checks)."""

    def __init__(self, *args, tenant, **kwargs):
        self.tenant = tenant
        super().__init__(*args, **kwargs)

    def _others(self):
        return Mailbox.objects.filter(tenant=self.tenant).exclude(pk=self.instance.pk)

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if self._others().filter(email__iexact=email).exists():
            raise ValidationError("This address is already connected to the workspace.")
        return email

    def clean_key(self) -> str:
        key = (self.cleaned_data.get("key") or "").strip().upper()
        if not key:
            return key
        if self._others().filter(key__iexact=key).exists():
            raise ValidationError("Another mailbox uses this key. Keys must be unique.")
        return key


SERVER_FIELDS = (
    "imap_host",
    "imap_port",
    "imap_security",
    "imap_username",
    "smtp_host",
    "smtp_port",
    "smtp_security",
    "smtp_same_credentials",
    "smtp_username",
)
ADVANCED_FIELDS = ("allow_self_signed", "connect_timeout", "auth_timeout")


class ServerFieldsMixin:
    """Shared labels, widgets and checks of the IMAP and SMTP fields."""

    def setup_server_fields(self) -> None:
        f = self.fields
        f["imap_host"].widget.attrs.update(
            placeholder="imap.example.com", autocomplete="off", spellcheck="false"
        )
        f["smtp_host"].widget.attrs.update(
            placeholder="smtp.example.com", autocomplete="off", spellcheck="false"
        )
        f["imap_host"].label, f["smtp_host"].label = "Server", "Server"
        f["imap_port"].label = f["smtp_port"].label = "Port"
        f["imap_security"].label = f["smtp_security"].label = "Security"
        f["imap_username"].label = "Username"
        f["smtp_username"].label = "SMTP username"
        f["imap_username"].help_text = "Usually the full email address."
        f["imap_host"].required = f["smtp_host"].required = True
        f["imap_port"].widget.attrs.update(placeholder="993", min=1, max=65535)
        f["smtp_port"].widget.attrs.update(placeholder="587", min=1, max=65535)
        if "allow_self_signed" in f:
            f["allow_self_signed"].label = "Allow self-signed certificates"
            f["allow_self_signed"].help_text = (
                "Only for servers you control: the connection is still encrypted, but nobody checks that it goes "
                "to the right server."
            )

    def clean_imap_host(self) -> str:
        return _clean_host(self.cleaned_data.get("imap_host", ""))

    def clean_smtp_host(self) -> str:
        return _clean_host(self.cleaned_data.get("smtp_host", ""))


def _clean_host(value: str) -> str:
    host = value.strip().lower().removeprefix("imaps://").removeprefix("imap://").removeprefix("smtp://")
    host = host.rstrip("/").rstrip(".")
    if host and not re.fullmatch(r"[a-z0-9._:\[\]-]+", host):
        raise ValidationError("Enter a host name like imap.example.com (no spaces, no “https://”).")
    return host


class ManualMailboxForm(ServerFieldsMixin, TenantMailboxForm):
    """“Other” provider: everything needed to connect by IMAP and SMTP with a password."""

    imap_password = password_field("Password", required=True)
    smtp_password = password_field("SMTP password")
    discovered = forms.CharField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = Mailbox
        fields = ("email", "name", "key", "sender_name", *SERVER_FIELDS, *ADVANCED_FIELDS)
        widgets = {
            "email": forms.EmailInput(attrs={"autocomplete": "off", "placeholder": "support@yourcompany.com"})
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.setup_server_fields()
        self.fields["email"].label = "Email address"
        self.fields["email"].widget.attrs.update(
            {
                "hx-get": tenant_reverse(self.tenant, "mailboxes:autodiscover"),
                "hx-trigger": "input changed delay:500ms",
                "hx-target": "#discovery-hint",
                "hx-swap": "outerHTML",
                "hx-sync": "this:replace",
                # Only the server fields and the last guess: never the passwords (GET ends up in logs).
                "hx-include": ",".join(f"[name={n}]" for n in (*DISCOVERY_FIELDS, "discovered")),
                "autofocus": True,
            }
        )
        self.fields["name"].label = "Display name"
        self.fields["name"].widget.attrs["placeholder"] = "Support"
        self.fields["key"].required = False
        self.fields["key"].help_text = "Up to 5 letters, shown on tickets. Leave empty to pick one for you."
        self.fields["imap_port"].initial = self.fields["smtp_port"].initial = None
        self.fields["imap_security"].initial = Security.SSL
        self.fields["smtp_security"].initial = Security.SSL

    def clean(self):
        data = super().clean()
        if data.get("email") and not self.errors.get("key") and not data.get("key"):
            data["key"] = unique_key(self.tenant, data["email"])
        if (
            not data.get("smtp_same_credentials")
            and data.get("smtp_password")
            and not data.get("smtp_username")
        ):
            self.add_error("smtp_username", "Enter the SMTP username that goes with the SMTP password.")
        return data

    def save(self, commit: bool = True) -> Mailbox:
        mailbox = super().save(commit=False)
        mailbox.tenant = self.tenant
        mailbox.key = self.cleaned_data["key"]
        mailbox.imap_password = self.cleaned_data["imap_password"]
        mailbox.smtp_password = self.cleaned_data.get("smtp_password", "")
        if not mailbox.name:
            mailbox.name = mailbox.email
        if commit:
            mailbox.save()
        return mailbox


# --- sections of the detail page -----------------------------------------------------------------------------


class DetailsForm(TenantMailboxForm):
    class Meta:
        model = Mailbox
        fields = ("name", "description", "key", "email", "sender_name", "reply_to")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["name"].label = "Display name"
        self.fields["email"].label = "Email address"
        self.fields["reply_to"].label = "Reply-To address"
        self.fields["reply_to"].help_text = "Only if replies should go to another address."
        if self.instance.is_oauth:
            self.fields["email"].disabled = True
            self.fields["email"].help_text = "Set by the account you signed in with."


class ConnectionForm(ServerFieldsMixin, TenantMailboxForm):
    imap_password = password_field("Password", help_text=PASSWORD_UNCHANGED_HELP)
    smtp_password = password_field("SMTP password", help_text=PASSWORD_UNCHANGED_HELP)

    class Meta:
        model = Mailbox
        fields = (*SERVER_FIELDS, *ADVANCED_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.setup_server_fields()
        if self.instance.is_oauth:
            for name in (
                "imap_username",
                "imap_password",
                "smtp_same_credentials",
                "smtp_username",
                "smtp_password",
            ):
                del self.fields[name]

    def save(self, commit: bool = True) -> Mailbox:
        mailbox = super().save(commit=False)
        for name in ("imap_password", "smtp_password"):
            value = self.cleaned_data.get(name)
            if value:  # empty: unchanged
                setattr(mailbox, name, value)
        if commit:
            mailbox.save()
        return mailbox


class FoldersForm(forms.ModelForm):
    extra_folders_text = forms.CharField(
        label="Also import from",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="More folders to turn into tickets, one per line.",
    )

    class Meta:
        model = Mailbox
        fields = (
            "folder_inbox",
            "folder_sent",
            "folder_drafts",
            "folder_trash",
            "folder_archive",
            "save_to_sent",
        )
        labels = {
            "folder_inbox": "Inbox",
            "folder_sent": "Sent",
            "folder_drafts": "Drafts",
            "folder_trash": "Trash",
            "folder_archive": "Archive",
            "save_to_sent": "Save sent replies in the Sent folder",
        }

    def __init__(self, *args, **kwargs):
        kwargs.pop("tenant", None)
        super().__init__(*args, **kwargs)
        self.fields["extra_folders_text"].initial = "\n".join(self.instance.extra_folders or [])
        for name in ("folder_inbox", "folder_sent", "folder_drafts", "folder_trash", "folder_archive"):
            self.fields[name].widget.attrs.update(list="detected-folders", autocomplete="off")
        self.fields["folder_inbox"].required = True
        if self.instance.provider_saves_sent:
            self.fields[
                "save_to_sent"
            ].help_text = "Gmail and Microsoft 365 do this themselves; we skip it for them."

    def save(self, commit: bool = True) -> Mailbox:
        mailbox = super().save(commit=False)
        lines = self.cleaned_data.get("extra_folders_text", "").splitlines()
        mailbox.extra_folders = [line.strip() for line in lines if line.strip()]
        if commit:
            mailbox.save()
        return mailbox


class TicketSettingsForm(forms.ModelForm):
    class Meta:
        model = Mailbox
        fields = (
            "tickets_enabled",
            "default_queue",
            "import_since",
            "after_import",
            "after_import_folder",
            "close_automatically",
            "header_filter",
            "poll_interval",
        )
        widgets = {"import_since": forms.DateInput(attrs={"type": "date"})}
        labels = {
            "tickets_enabled": "Turn incoming mail into tickets",
            "default_queue": "Queue for new tickets",
            "after_import": "After import",
            "after_import_folder": "Move to folder",
            "close_automatically": "Import as closed tickets (archive)",
            "header_filter": "Only import mail with this header",
            "poll_interval": "Check for new mail every (seconds)",
        }

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        from tickets.models import Queue

        self.fields["default_queue"].queryset = Queue.objects.filter(tenant=tenant)
        self.fields["default_queue"].empty_label = "No queue (unassigned)"
        self.fields[
            "import_since"
        ].help_text = "Older mail stays in the mailbox. Empty: only mail from now on."
        self.fields["after_import_folder"].widget.attrs.update(list="detected-folders", autocomplete="off")

    def clean(self):
        data = super().clean()
        if data.get("after_import") == AfterImport.MOVE and not data.get("after_import_folder"):
            self.add_error("after_import_folder", "Choose the folder to move imported mail to.")
        header = data.get("header_filter", "")
        if header and ":" not in header:
            self.add_error("header_filter", "Write it as “Header-Name: value”, e.g. “X-Support: yes”.")
        return data


class AutoReplyForm(forms.ModelForm):
    class Meta:
        model = Mailbox
        fields = ("autoreply_enabled", "autoreply_subject", "autoreply_body")
        labels = {
            "autoreply_enabled": "Send an automatic reply to new tickets",
            "autoreply_subject": "Subject",
            "autoreply_body": "Message",
        }
        widgets = {"autoreply_body": forms.Textarea(attrs={"rows": 6})}

    def __init__(self, *args, **kwargs):
        kwargs.pop("tenant", None)
        super().__init__(*args, **kwargs)
        self.fields["autoreply_body"].help_text = f"Variables: {signatures.VARIABLES_HELP}"

    def clean_autoreply_subject(self) -> str:
        return check_template(self.cleaned_data.get("autoreply_subject", ""))

    def clean_autoreply_body(self) -> str:
        return check_template(self.cleaned_data.get("autoreply_body", ""))

    def clean(self):
        data = super().clean()
        if data.get("autoreply_enabled") and not (data.get("autoreply_body") or "").strip():
            self.add_error(
                "autoreply_body", "Write the message customers receive, or switch the auto-reply off."
            )
        return data


class SignatureForm(forms.ModelForm):
    class Meta:
        model = Mailbox
        fields = ("signature",)
        widgets = {"signature": forms.Textarea(attrs={"rows": 5})}

    def __init__(self, *args, **kwargs):
        kwargs.pop("tenant", None)
        super().__init__(*args, **kwargs)
        self.fields["signature"].help_text = (
            "Used when the agent has no signature of their own. Empty: the workspace's standard signature. "
            f"Variables: {signatures.VARIABLES_HELP}"
        )

    def clean_signature(self) -> str:
        return check_template(self.cleaned_data.get("signature", ""))


class VisibilityForm(forms.ModelForm):
    class Meta:
        model = Mailbox
        fields = ("visibility", "visible_to")
        widgets = {"visibility": forms.RadioSelect, "visible_to": forms.CheckboxSelectMultiple}
        labels = {"visibility": "Who sees this mailbox's tickets", "visible_to": "Members"}

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["visible_to"].queryset = (
            Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__email")
        )
        self.fields["visible_to"].label_from_instance = lambda m: f"{m.user.display_name} ({m.user.email})"
        self.fields["visible_to"].help_text = "Admins always see every mailbox."

    def clean(self):
        data = super().clean()
        if data.get("visibility") == Visibility.MEMBERS and not data.get("visible_to"):
            self.add_error("visible_to", "Choose at least one member, or let all agents see it.")
        return data


SECTIONS: dict[str, tuple[type[forms.ModelForm], str]] = {
    "details": (DetailsForm, "Details"),
    "connection": (ConnectionForm, "Connection"),
    "folders": (FoldersForm, "Folders"),
    "tickets": (TicketSettingsForm, "Ticket settings"),
    "autoreply": (AutoReplyForm, "Auto-reply"),
    "signature": (SignatureForm, "Signature"),
    "visibility": (VisibilityForm, "Visibility"),
}


# --- other pages ---------------------------------------------------------------------------------------------


class CopyForm(forms.Form):
    email = forms.EmailField(label="Email address of the new account")
    name = forms.CharField(label="Display name", max_length=120)
    key = forms.CharField(label="Short key", max_length=5, required=False, validators=[key_validator])
    imap_password = password_field("Password")
    smtp_password = password_field("SMTP password")

    def __init__(self, *args, source: Mailbox, **kwargs):
        self.source = source
        super().__init__(*args, **kwargs)
        self.fields["email"].widget.attrs["placeholder"] = f"someone@{source.domain}"
        self.fields["key"].help_text = "Leave empty to pick one for you."
        if source.is_oauth:
            del self.fields["imap_password"]
            del self.fields["smtp_password"]
        else:
            self.fields["imap_password"].required = True
            if source.smtp_same_credentials:
                del self.fields["smtp_password"]

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if email.rpartition("@")[2] != self.source.domain:
            raise ValidationError(
                f"A copy keeps this account's servers, so it needs an address at {self.source.domain}. "
                "For another domain, add a new account."
            )
        if Mailbox.objects.filter(tenant=self.source.tenant, email__iexact=email).exists():
            raise ValidationError("This address is already connected to the workspace.")
        return email

    def clean_key(self) -> str:
        key = (self.cleaned_data.get("key") or "").upper()
        if key and Mailbox.objects.filter(tenant=self.source.tenant, key__iexact=key).exists():
            raise ValidationError("Another mailbox uses this key.")
        return key


class DeleteForm(forms.Form):
    confirm_email = forms.CharField(
        label="Type the address to confirm", widget=forms.TextInput(attrs={"autocomplete": "off"})
    )

    def __init__(self, *args, mailbox: Mailbox, **kwargs):
        self.mailbox = mailbox
        super().__init__(*args, **kwargs)
        self.fields["confirm_email"].widget.attrs["placeholder"] = mailbox.email

    def clean_confirm_email(self) -> str:
        value = self.cleaned_data["confirm_email"].strip()
        if value.lower() != self.mailbox.email.lower():
            raise ValidationError(
                f"That is not the address of this mailbox. Type {self.mailbox.email} to delete it."
            )
        return value


class TestForm(forms.Form):
    also_send_to_me = forms.BooleanField(required=False, label="Also send the test email to me")


class EmailSettingsForm(forms.ModelForm):
    default_mailbox = forms.ModelChoiceField(
        queryset=Mailbox.objects.none(),
        required=False,
        label="Default sending account",
        empty_label="None chosen",
        help_text="Used for new mail that is not a reply to a mailbox's ticket.",
    )

    class Meta:
        model = EmailSettings
        fields = (
            "sender_name_format",
            "sender_name",
            "signature",
            "greeting",
            "cc1",
            "cc2",
            "bcc",
            "html_layout",
        )
        widgets = {
            "signature": forms.Textarea(attrs={"rows": 4}),
            "greeting": forms.Textarea(attrs={"rows": 2}),
            "html_layout": forms.Textarea(attrs={"rows": 12, "class": "mono", "spellcheck": "false"}),
            "sender_name_format": forms.RadioSelect,
        }
        labels = {
            "sender_name_format": "Sender name customers see",
            "sender_name": "Sender name",
            "signature": "Standard signature",
            "html_layout": "HTML layout",
        }

    def __init__(self, *args, tenant, **kwargs):
        self.tenant = tenant
        super().__init__(*args, **kwargs)
        mailboxes = Mailbox.objects.filter(tenant=tenant).order_by("name")
        self.fields["default_mailbox"].queryset = mailboxes
        self.fields["default_mailbox"].initial = mailboxes.filter(is_default=True).first()
        self.fields["default_mailbox"].label_from_instance = lambda m: f"{m.name} <{m.email}>"
        self.fields["sender_name"].widget.attrs["placeholder"] = tenant.name
        self.fields["signature"].help_text = f"Variables: {signatures.VARIABLES_HELP}"
        self.fields[
            "greeting"
        ].help_text = "The first line of new replies, e.g. Hello {{ contact.first_name }},"
        self.fields["html_layout"].help_text = (
            "The HTML around every email. It must contain {{ content }} where the message goes. Empty: a clean "
            "default layout."
        )

    def clean_signature(self) -> str:
        return check_template(self.cleaned_data.get("signature", ""))

    def clean_greeting(self) -> str:
        return check_template(self.cleaned_data.get("greeting", ""))

    def clean_html_layout(self) -> str:
        layout = self.cleaned_data.get("html_layout", "")
        if layout.strip() and not CONTENT_RE.search(layout):
            raise ValidationError("The layout must contain {{ content }}: that is where the message goes.")
        return check_template(layout, html=True)


class OAuthAppForm(forms.ModelForm):
    """The tenant's own client at Microsoft or Google. Like passwords, the secret never goes back to the
    browser; left empty on a saved app, it stays as it is."""

    client_secret = forms.CharField(
        label="Client secret",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = OAuthApp
        fields = ("client_id", "directory")
        labels = {"client_id": "Client ID"}
        widgets = {
            "client_id": forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
            "directory": forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.client_secret:
            self.fields["client_secret"].help_text = "Leave empty to keep the saved secret."
        else:
            self.fields["client_secret"].required = True
        if self.instance.provider == Provider.MICROSOFT:
            self.fields["client_id"].help_text = "The application (client) ID of your app registration."
            self.fields["directory"].widget.attrs["placeholder"] = "common"
        else:
            self.fields["client_id"].help_text = "Ends in .apps.googleusercontent.com."
            del self.fields["directory"]

    def clean_client_id(self) -> str:
        value = self.cleaned_data["client_id"].strip()
        if not re.fullmatch(r"[\w.~-]+", value):
            raise ValidationError("Paste the client ID exactly as the provider shows it, without spaces.")
        return value

    def clean_directory(self) -> str:
        # It goes into the sign-in URLs (…/<directory>/oauth2/…): a GUID or a domain, nothing else.
        value = self.cleaned_data.get("directory", "").strip()
        if value and not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?", value):
            raise ValidationError("Enter the directory (tenant) ID or a domain like contoso.onmicrosoft.com.")
        return value

    def save(self, commit: bool = True) -> OAuthApp:
        app = super().save(commit=False)
        if self.cleaned_data.get("client_secret"):  # empty: unchanged
            app.client_secret = self.cleaned_data["client_secret"]
        if commit:
            app.save()
        return app
