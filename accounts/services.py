"""Writes for accounts: role definitions, invitations, role assignment, API tokens."""

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.urls import reverse

from accounts.models import ApiToken, Invitation, User
from accounts.policy import can_assign_roles, can_invite_users, require
from accounts.roles import ROLE_PERMISSIONS, Role
from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import SystemActor


def roles_sync(*, using: str = "default") -> None:
    """Make each role's group hold exactly the permissions ``ROLE_PERMISSIONS`` lists. Idempotent."""
    for role, perm_names in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.using(using).get_or_create(name=role.value)
        wanted = []
        for name in perm_names:
            app_label, codename = name.split(".")
            perm = (
                Permission.objects.using(using)
                .filter(content_type__app_label=app_label, codename=codename)
                .first()
            )
            if perm is None:
                raise LookupError(f"Role {role.value!r} names a permission that does not exist: {name}")
            wanted.append(perm)
        group.permissions.set(wanted)


@transaction.atomic
def role_assign(*, user: User, role: Role, actor: User | SystemActor) -> None:
    require(can_assign_roles, actor, message="Only maintainers grant roles.", allow_system=True)
    group = Group.objects.get(name=role.value)
    if not user.groups.filter(pk=group.pk).exists():
        user.groups.add(group)
        audit_record(actor=actor, action=AuditAction.ROLE_ASSIGN, target=user, details={"role": role.value})


@transaction.atomic
def role_remove(*, user: User, role: Role, actor: User | SystemActor) -> None:
    require(can_assign_roles, actor, message="Only maintainers remove roles.", allow_system=True)
    group = Group.objects.get(name=role.value)
    if user.groups.filter(pk=group.pk).exists():
        user.groups.remove(group)
        audit_record(actor=actor, action=AuditAction.ROLE_REMOVE, target=user, details={"role": role.value})


def _password_set_url(user: User) -> str:
    # allauth's own password-reset key: the invited person chooses a password through the same
    # audited, expiring flow as a reset, and their address counts as verified once they use it.
    from allauth.account.forms import default_token_generator
    from allauth.account.utils import user_pk_to_url_str

    return reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": user_pk_to_url_str(user), "key": default_token_generator.make_token(user)},
    )


def user_invite(*, email: str, role: Role, invited_by: User, site_url: str) -> Invitation:
    """Create (or reuse) the account for ``email``, grant ``role`` and e-mail a password-set link."""
    require(can_invite_users, invited_by, message="Only maintainers invite people.")
    from allauth.account.models import EmailAddress
    from django.core.mail import send_mail

    email = email.strip().lower()
    with transaction.atomic():
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User(email=email)
            user.set_unusable_password()
            user.full_clean()
            user.save()
        elif not EmailAddress.objects.filter(user=user, email=email, verified=True).exists():
            # Someone may have signed up with this address without owning it. The invitation
            # verifies the address, so the password chosen at that sign-up must not survive it:
            # only the owner of the mailbox, through the link, sets the password of the account.
            user.set_unusable_password()
            user.save(update_fields=["password"])
        EmailAddress.objects.update_or_create(
            user=user, email=email, defaults={"verified": True, "primary": True}
        )
        role_assign(user=user, role=role, actor=invited_by)
        invitation = Invitation.objects.create(user=user, role=role.value, invited_by=invited_by)
        audit_record(
            actor=invited_by, action=AuditAction.USER_INVITE, target=user, details={"role": role.value}
        )
        link = site_url.rstrip("/") + _password_set_url(user)
        transaction.on_commit(
            lambda: send_mail(
                subject="[MedHarm] You are invited to the MedHarm platform",
                message=(
                    f"{invited_by.email} invited you to MedHarm as {role.label}.\n\n"
                    f"Choose your password here (the link works once): {link}\n"
                ),
                from_email=None,
                recipient_list=[email],
            )
        )
    return invitation


def token_issue(*, user: User) -> tuple[str, bool]:
    """A new API token for the user, replacing any earlier one; returns ``(key, replaced)``.

    Only the key's hash is stored, so an existing key cannot be shown again: asking issues a new
    one (shown this once) and the old one stops working.
    """
    with transaction.atomic():
        replaced, _ = ApiToken.objects.filter(user=user).delete()
        token = ApiToken.objects.create(user=user)
        # The key itself is a credential: the audit trail records its prefix, never its value.
        audit_record(
            actor=user,
            action=AuditAction.TOKEN_ISSUE,
            target=user,
            details={"prefix": token.prefix, "replaced": bool(replaced)},
        )
    return token.key, bool(replaced)


def token_revoke(*, user: User) -> bool:
    """Delete the user's API token, if any; returns whether there was one."""
    with transaction.atomic():
        deleted, _ = ApiToken.objects.filter(user=user).delete()
        if deleted:
            audit_record(actor=user, action=AuditAction.TOKEN_REVOKE, target=user)
    return bool(deleted)
