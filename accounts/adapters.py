"""allauth adapter: who may sign up, and what a self-registered account becomes."""

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest

from accounts.models import User
from accounts.roles import Role


class AccountAdapter(DefaultAccountAdapter):
    def save_user(self, request: HttpRequest, user: User, form: object, commit: bool = True) -> User:
        from accounts.services import role_assign

        user = super().save_user(request, user, form, commit=commit)
        if commit:
            # Anyone who signs up is a researcher: clinicians and staff are invited, never self-made.
            role_assign(user=user, role=Role.RESEARCHER, actor=None)
        return user
