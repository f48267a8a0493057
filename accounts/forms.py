from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from accounts.models import RESERVED_SLUGS, Role, Tenant, User, slug_validator


class LoginForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )


class WorkspaceForm(forms.Form):
    workspace_name = forms.CharField(label="Company or team name", max_length=120)
    slug = forms.CharField(
        label="Workspace address",
        max_length=40,
        validators=[slug_validator],
        help_text="Lowercase letters, digits and dashes. Your helpdesk will live at /<address>/.",
    )

    def clean_slug(self):
        slug = self.cleaned_data["slug"].lower()
        if slug in RESERVED_SLUGS:
            raise forms.ValidationError("This address is reserved. Choose another one.")
        if Tenant.objects.filter(slug=slug).exists():
            raise forms.ValidationError("This address is already taken. Choose another one.")
        return slug


class PasswordMixin(forms.Form):
    password = forms.CharField(
        label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), strip=False
    )

    def clean_password(self):
        password = self.cleaned_data["password"]
        email = self.cleaned_data.get("email") or getattr(self, "invited_email", "")
        password_validation.validate_password(password, User(email=email, name=self.cleaned_data.get("name", "")))
        return password


class SignupForm(WorkspaceForm, PasswordMixin):
    name = forms.CharField(label="Your name", max_length=120)
    email = forms.EmailField(label="Work email")

    field_order = ["workspace_name", "slug", "name", "email", "password"]

    def clean_email(self):
        email = self.cleaned_data["email"].lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email exists. Sign in to create another workspace.")
        return email


class AcceptInvitationForm(PasswordMixin):
    name = forms.CharField(label="Your name", max_length=120)
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
    email = forms.EmailField()
    role = forms.ChoiceField(choices=[c for c in Role.choices if c[0] != Role.OWNER], initial=Role.AGENT)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
