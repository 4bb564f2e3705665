"""DRF authentication by researcher token (``Authorization: Bearer mhr_...``).

Used only by the release API views: a researcher token opens nothing else. The token is looked up
by its sha256 among live tokens (not revoked, not expired, both checked by the database). Its
OpenAPI description is ``access.openapi`` (loaded with the URLs, where the schema is served)."""

from __future__ import annotations

from django.db.models.functions import Now
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from access.models import ResearcherToken
from access.selectors import token_authenticate
from access.services import TOKEN_PREFIX, token_hash


class ResearcherTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[object, ResearcherToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send 'Authorization: Bearer <token>' with one token.")
        key = header[1].decode(errors="replace")
        if not key.startswith(TOKEN_PREFIX):
            raise exceptions.AuthenticationFailed("This is not a researcher token.")
        token = token_authenticate(key_hash=token_hash(key))
        if token is None:
            raise exceptions.AuthenticationFailed("The token is unknown, expired or revoked.")
        ResearcherToken.objects.filter(pk=token.pk).update(last_used_at=Now())
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'
