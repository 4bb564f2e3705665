"""Account pages: inviting a colleague."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from rules.contrib.views import permission_required

from accounts.forms import InvitationForm
from accounts.http import AuthenticatedHttpRequest
from accounts.roles import Role
from accounts.services import user_invite


@login_required
@permission_required("accounts.invite", raise_exception=True)
def invite(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = InvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        invitation = user_invite(
            email=form.cleaned_data["email"],
            role=Role(form.cleaned_data["role"]),
            invited_by=request.user,
            site_url=settings.SITE_URL,
        )
        messages.success(
            request, f"Invitation sent to {invitation.user.email} as {invitation.get_role_display()}."
        )
        return redirect("invite")
    return render(request, "accounts/invite.html", {"form": form})
