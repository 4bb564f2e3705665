"""Forms for account administration."""

from django import forms

from accounts.roles import Role


class InvitationForm(forms.Form):
    email = forms.EmailField(label="E-mail address")
    role = forms.ChoiceField(choices=[(r.value, r.label) for r in Role if r != Role.RESEARCHER])
