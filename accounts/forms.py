from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from accounts.models import RESERVED_SLUGS, Role, Tenant, User, slug_validator


class LoginForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    error_messages = {
        "invalid_login": "That email and password do not match an account. Check both and try again.",
        "inactive": "This account is disabled. Ask an admin of your workspace for help.",
    }

    def clean_username(self) -> str:
        # Lowercase before authenticate(): django-axes counts failures per username as given, so "Ann@x"
        # and "ann@x" must be one name, or varying the case would multiply the allowed guesses.
        return self.cleaned_data["username"].lower()


class LowercaseField(forms.CharField):
    def to_python(self, value):
        return super().to_python(value).lower()


class WorkspaceForm(forms.Form):
    workspace_name = forms.CharField(
        label="Company or team name",
        max_length=120,
        widget=forms.TextInput(attrs={"data-autofill-slug": "id_slug", "autocomplete": "organization"}),
    )
    slug = LowercaseField(
        label="Workspace address",
        max_length=40,
        validators=[slug_validator],
        help_text="Lowercase letters, digits and dashes.",
        widget=forms.TextInput(attrs={"autocapitalize": "none", "spellcheck": "false"}),
    )

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        if slug in RESERVED_SLUGS:
            raise forms.ValidationError("This address is reserved. Choose another one.")
        if Tenant.objects.filter(slug=slug).exists():
            raise forms.ValidationError("This address is already taken. Choose another one.")
        return slug


class PasswordMixin(forms.Form):
    password = forms.CharField(
        label="Password",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        strip=False,
        help_text="At least 10 characters. Avoid common passwords and your name.",
    )

    def clean_password(self):
        password = self.cleaned_data["password"]
        email = self.cleaned_data.get("email") or getattr(self, "invited_email", "")
        password_validation.validate_password(
            password, User(email=email, name=self.cleaned_data.get("name", ""))
        )
        return password


class SignupForm(WorkspaceForm, PasswordMixin):
    name = forms.CharField(
        label="Your name", max_length=120, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    email = forms.EmailField(label="Work email", widget=forms.EmailInput(attrs={"autocomplete": "email"}))

    field_order = ["workspace_name", "slug", "name", "email", "password"]

    def clean_email(self):
        email = self.cleaned_data["email"].lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(
                "An account with this email exists. Sign in to create another workspace."
            )
        return email


class AcceptInvitationForm(PasswordMixin):
    name = forms.CharField(
        label="Your name",
        max_length=120,
        widget=forms.TextInput(attrs={"autocomplete": "name", "autofocus": True}),
    )
    field_order = ["name", "password"]

    def __init__(self, *args, invited_email: str, **kwargs):
        self.invited_email = invited_email
        super().__init__(*args, **kwargs)


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["name", "phone", "mobile", "fax", "signature"]
        widgets = {"signature": forms.Textarea(attrs={"rows": 5})}
        help_texts = {
            "signature": "Plain text. Variables: {{ agent.name }}, {{ agent.email }}, {{ agent.phone }}, "
            "{{ agent.mobile }}, {{ agent.fax }}."
        }


class InviteForm(forms.Form):
    email = forms.EmailField(
        label="Email address", widget=forms.EmailInput(attrs={"placeholder": "name@company.com"})
    )
    role = forms.ChoiceField(
        choices=[c for c in Role.choices if c[0] != Role.OWNER],
        initial=Role.AGENT,
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
