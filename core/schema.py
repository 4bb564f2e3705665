"""The OpenAPI schema class: drf-spectacular's, with the error answers of core/errors.py
documented on every operation."""

from __future__ import annotations

from typing import Any, Literal, cast

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers
from rest_framework.request import Request


class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API (docs/api-errors.md)."""

    detail = serializers.CharField()
    code = serializers.CharField()
    # A field named like Serializer.errors: the metaclass moves declared fields off the class.
    errors = serializers.DictField(required=False, help_text="Validation errors per field.")  # type: ignore[assignment]
    problems = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text="Import problems: file, line, field, message.",
    )


ERROR_ANSWERS = {
    "400": "Invalid input: what was wrong, per field.",
    "403": "Not logged in, or the role does not allow this.",
    "404": "No such object within the caller's scope.",
    "409": "The object is in the wrong state for this action.",
    "413": "The request body is over the import size limit.",
}
UNAUTHENTICATED = "No valid credentials: the bearer token is missing, expired or revoked."


class ErrorAutoSchema(AutoSchema):
    """drf-spectacular's schema with the error answers documented on every operation."""

    def _get_response_bodies(self, direction: Literal["request", "response"] = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        answers = dict(ERROR_ANSWERS)
        if self._challenges_credentials():
            answers["401"] = UNAUTHENTICATED
        for code, description in sorted(answers.items()):
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code)
                responses[code]["description"] = description
        return responses

    def _challenges_credentials(self) -> bool:
        """DRF answers 401 (with WWW-Authenticate) instead of 403 when the view's first
        authenticator names a scheme to challenge with, as the researchers' bearer tokens do."""
        authenticators = self.view.get_authenticators()
        if not authenticators:
            return False
        # The header names a scheme whatever the request; the generator's view may hold none.
        request = cast(Request, getattr(self.view, "request", None))
        return bool(authenticators[0].authenticate_header(request))
