"""DRF authentication by API token (``Authorization: Token <key>``), looked up by its SHA-256.

Named in ``REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]``, which DRF imports when its views
module loads (possibly before the app registry is ready): the models are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework import authentication, exceptions

if TYPE_CHECKING:
    from accounts.models import ApiToken, User


class HashedTokenAuthentication(authentication.TokenAuthentication):
    """DRF's token scheme, but the database holds only each key's hash (``ApiToken``)."""

    keyword = "Token"

    def authenticate_credentials(self, key: str) -> tuple[User, ApiToken]:
        from accounts.models import ApiToken, api_token_hash

        token = ApiToken.objects.select_related("user").filter(key_hash=api_token_hash(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return token.user, token
