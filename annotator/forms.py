"""HTML forms: they parse and check input; the services decide and write."""

from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.exceptions import ValidationError

from annotator.models import Campaign, CampaignRole, LedgerCategory, Round
from annotator.services.sign_in import LOCKED_MESSAGE, sign_in_locked


class SignInForm(AuthenticationForm):
    """Django's sign-in form, which says so when a username is locked after too many failures."""

    def clean(self):
        username = self.cleaned_data.get("username")
        if username and sign_in_locked(username=username):
            raise ValidationError(LOCKED_MESSAGE, code="locked")
        return super().clean()


class LedgerEntryForm(forms.Form):
    """A staff entry: contractor invoice, fee, bonus, credit or correction, always with a reason."""

    category = forms.ChoiceField(choices=LedgerCategory.choices, initial=LedgerCategory.CONTRACTOR)
    amount = forms.DecimalField(
        max_digits=14, decimal_places=4, help_text="In the campaign's currency; negative for a credit or refund."
    )
    quantity = forms.DecimalField(max_digits=16, decimal_places=4, required=False, initial=Decimal("0"))
    unit = forms.CharField(max_length=32, required=False, help_text="e.g. invoice, hours, items")
    labeler = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(), required=False, help_text="Whose earnings this is, if anyone's."
    )
    round = forms.ModelChoiceField(queryset=Round.objects.none(), required=False)
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), max_length=2000,
        help_text="Who, what and why: the invoice number, the correction's cause. Kept for the audit trail.",
    )

    def __init__(self, *args, campaign: Campaign, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["labeler"].queryset = (
            get_user_model().objects.filter(labeler__isnull=False).order_by("username")
        )
        self.fields["round"].queryset = Round.objects.filter(campaign=campaign).order_by("number")

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("An entry of zero records nothing.")
        return amount

    def clean_quantity(self) -> Decimal:
        return self.cleaned_data["quantity"] or Decimal("0")


class LedgerReversalForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), max_length=2000,
        help_text="Why this entry is cancelled. Kept for the audit trail.",
    )


class InvitationForm(forms.Form):
    """Invite someone to a campaign: a role, and where to e-mail the link, if anywhere."""

    role = forms.ChoiceField(choices=CampaignRole.choices, initial=CampaignRole.LABELER)
    email = forms.EmailField(
        required=False, help_text="Optional: the link is e-mailed there too. Anyone holding the link can use it, once."
    )


class InvitationSignUpForm(UserCreationForm):
    """A new account from an invitation: username (unique, case-insensitively), e-mail for password resets, and a
    password that passes settings.AUTH_PASSWORD_VALIDATORS. `save(commit=False)` gives the unsaved user that
    `services.invitations.invitation_accept` saves."""

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")
        help_texts = {"email": "Optional; needed to reset a forgotten password."}
