"""Forms for account administration."""

from allauth.account.forms import AddEmailForm as _AllauthAddEmailForm
from allauth.account.models import EmailAddress
from django import forms

from accounts.models import User
from accounts.roles import Role


class InvitationForm(forms.Form):
    email = forms.EmailField(label="E-mail address")
    role = forms.ChoiceField(choices=[(r.value, r.label) for r in Role if r != Role.RESEARCHER])


class AddEmailForm(_AllauthAddEmailForm):
    """allauth's form to add an address to one's account, refusing an address already on another
    account: allauth would accept it unverified (to hide which addresses exist) and mail its owner
    a verification link they never asked for. Refusing says the address is taken, which is the
    smaller harm on a platform whose accounts are invited and vetted."""

    def clean_email(self) -> str:
        value = super().clean_email()
        taken = EmailAddress.objects.filter(email__iexact=value).exclude(user=self.user).exists()
        taken = taken or User.objects.filter(email__iexact=value).exclude(pk=self.user.pk).exists()
        if taken:
            raise forms.ValidationError(
                "This address belongs to another account; add an address of your own."
            )
        return value
