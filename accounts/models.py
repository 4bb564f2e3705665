"""The platform's user: identified by e-mail address, with roles held as groups."""

import hashlib
import secrets
from typing import ClassVar

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models

from accounts.roles import Role


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **fields: object) -> "User":
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **fields: object) -> "User":
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields: object) -> "User":
        fields["is_staff"] = True
        fields["is_superuser"] = True
        return self._create(email, password, **fields)


class User(AbstractUser):
    username = None  # type: ignore[assignment]  # drops the field: Django's documented way, unknown to the stubs
    email = models.EmailField("e-mail address", unique=True)
    display_name = models.CharField(max_length=150, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    # Our e-mail manager replaces AbstractUser's username-based UserManager, which the stubs expect.
    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]

    class Meta:
        ordering = ["email"]
        permissions = [("invite_user", "Can invite a user with a role")]

    def __str__(self) -> str:
        return self.display_name or self.email

    @property
    def roles(self) -> set[Role]:
        names = {group.name for group in self.groups.all()}
        return {role for role in Role if role.value in names}

    def has_role(self, role: Role) -> bool:
        return role in self.roles


class Invitation(models.Model):
    """A record that staff invited someone into a role: who, by whom, when."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="invitations")
    role = models.CharField(max_length=40, choices=Role.choices)
    invited_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user} as {self.role}"


def api_token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiTokenManager(models.Manager["ApiToken"]):
    def create(self, *, user: User, key: str | None = None, **fields: object) -> "ApiToken":  # type: ignore[override]
        """A token for ``user``; the returned object alone carries the clear ``key`` (shown once)."""
        key = key or secrets.token_hex(20)
        token = super().create(user=user, key_hash=api_token_hash(key), prefix=key[:8], **fields)
        token.key = key
        return token


class ApiToken(models.Model):
    """A script's API token (``Authorization: Token <key>``). Only the key's SHA-256 is stored: the
    key is shown once, when issued; issuing again replaces it. One per user."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="api_token")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)  # lets the holder tell which key this is
    created_at = models.DateTimeField(auto_now_add=True)

    objects: ClassVar[ApiTokenManager] = ApiTokenManager()
    key: str  # set on a token just created, never loaded from the database

    def __str__(self) -> str:
        return f"{self.user} ({self.prefix}…)"
