"""Admin views of accounts: read-only. Roles change through the audited role services, offered here
as admin actions; new accounts arrive by invitation (the invite page) or sign-up."""

from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.http import signed_in_user
from accounts.models import ApiToken, Invitation, User
from accounts.roles import Role
from accounts.services import role_assign, role_remove
from core.admin import ReadOnlyAdmin, ReadOnlyAdminMixin


def _role_action(role: Role, *, grant: bool) -> Callable[..., None]:
    verb = "Grant" if grant else "Remove"

    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[User]) -> None:
        service = role_assign if grant else role_remove
        try:
            for user in queryset:
                service(user=user, role=role, actor=signed_in_user(request))
        except PermissionDenied as exc:
            modeladmin.message_user(request, str(exc), messages.ERROR)
            return
        modeladmin.message_user(request, f"{verb} role {role.label}: {queryset.count()} account(s).")

    action.__name__ = f"{verb.lower()}_{role.name.lower()}"
    return admin.action(description=f"{verb} role: {role.label}")(action)


@admin.register(User)
class UserAdmin(ReadOnlyAdminMixin, DjangoUserAdmin):
    ordering = ("email",)
    list_display = ("email", "display_name", "is_active", "is_staff", "last_login")
    list_filter = ("is_active", "is_staff", "is_superuser", "groups")
    search_fields = ("email", "display_name")
    fieldsets = (
        (None, {"fields": ("email", "display_name")}),
        ("Roles and permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    actions = [_role_action(role, grant=grant) for role in Role for grant in (True, False)]


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ("user", "role", "invited_by", "created_at")
    list_filter = ("role",)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Which scripts' tokens exist (holder, the key's first characters, when issued); never the hash.
    Issuing and revoking go through the token endpoint, which audits them."""

    list_display = ("user", "prefix", "created_at")
    fields = ("user", "prefix", "created_at")
    search_fields = ("user__email", "prefix")
