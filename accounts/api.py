"""API for the caller's own account: the token that scripts use instead of a browser session."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.http import request_user
from accounts.services import token_issue, token_revoke

_SCRIPT_AUTH_HELP = (
    "Scripts authenticate with the header `Authorization: Token <key>`. The key is handed out only "
    "to a caller who is already logged in (a browser session, which went through the password, "
    "lockout and two-factor checks, or an existing token): it is never exchanged for a password, "
    "so a token cannot bypass those checks. Get it here with a POST from the logged-in session "
    "(for example with 'Try it out' on this page), keep it secret, and DELETE it to revoke it. "
    "Only a hash of the key is stored: the key is shown once, and each POST issues a new key that "
    "replaces the old one."
)


class AuthTokenView(APIView):
    """The caller's API token: POST issues a new one (replacing any other), DELETE revokes it."""

    @extend_schema(
        summary="Issue your API token",
        description=_SCRIPT_AUTH_HELP,
        request=None,
        responses={201: inline_serializer("NewToken", {"token": serializers.CharField()})},
    )
    def post(self, request: Request) -> Response:
        key, _ = token_issue(user=request_user(request))
        return Response({"token": key}, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Revoke your API token", description=_SCRIPT_AUTH_HELP, request=None, responses={204: None}
    )
    def delete(self, request: Request) -> Response:
        token_revoke(user=request_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
