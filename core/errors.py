"""The error contract of the whole platform, in one place (docs/api-errors.md describes it).

Every refused API request answers with one JSON shape and one status per kind::

    {"detail": "what was wrong, in words", "code": "invalid",
     "errors": {"field": ["message", ...]},          # validation only
     "problems": [{"file", "line", "field", "message"}]}  # file imports only

    400 invalid / parse_error    403 permission_denied / not_authenticated    404 not_found
    409 conflict                 413 too_large

- ``exception_handler`` is DRF's EXCEPTION_HANDLER: it turns DRF exceptions and Django's
  ``ValidationError`` / ``PermissionDenied`` / ``ObjectDoesNotExist`` / ``Http404`` into that shape.
  Views raise; they never build error answers themselves.
- ``InputGuardMiddleware`` refuses, before any view runs, what no view can store: NUL characters and
  lone surrogates in query parameters and form fields (400), and bodies over the import size limit
  (413, read from Content-Length, so a huge upload is never parsed). Pages get a plain 400/413 page.
- ``StrictJSONParser`` is the API's JSON parser (duplicate keys, nesting, NUL, surrogates: 400).
- ``core.schema.ErrorAutoSchema`` documents the error answers on every operation of the OpenAPI schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from core import strict_json

API_PREFIX = "/api/"


# --- exceptions views raise ------------------------------------------------------------------------


class Conflict(exceptions.APIException):
    """The object is in the wrong state for this action (a closed campaign, a finished run)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object is not in a state that allows this."
    default_code = "conflict"


class TooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request is too large."
    default_code = "too_large"


# --- the shape -----------------------------------------------------------------------------------


CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "throttled",
}


def error_body(status_code: int, detail: str, *, code: str | None = None, **extra: Any) -> dict[str, Any]:
    """The one error shape: ``detail`` and ``code`` always, then ``errors``/``problems`` if given."""
    body: dict[str, Any] = {"detail": detail, "code": code or CODES.get(status_code, "error")}
    body.update({key: value for key, value in extra.items() if value is not None})
    return body


def _flatten(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(
            _flatten(value) if key == "non_field_errors" else f"{key}: {_flatten(value)}"
            for key, value in detail.items()
        )
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    return str(detail)


def _validation_errors(detail: Any) -> dict[str, Any]:
    if isinstance(detail, dict):
        return {key: value if isinstance(value, list | dict) else [value] for key, value in detail.items()}
    return {"non_field_errors": detail if isinstance(detail, list) else [detail]}


def _django_validation(error: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(error, "error_dict"):
        return exceptions.ValidationError(error.message_dict)
    return exceptions.ValidationError(error.messages)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every known error in the shape above; anything else stays a 500."""
    if isinstance(exc, DjangoValidationError):
        exc = _django_validation(exc)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)  # the view's own words ("No such item assigned to you.")
    elif isinstance(exc, ObjectDoesNotExist):
        exc = exceptions.NotFound()
    # Imported here: rest_framework.views reads the parser setting, which names this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        data = exc.detail
        explicit = data.get("detail") if isinstance(data, dict) and set(data) == {"detail"} else None
        if explicit is not None:
            response.data = error_body(response.status_code, _flatten(explicit))
        else:
            response.data = error_body(
                response.status_code, _flatten(data) or "Invalid input.", errors=_validation_errors(data)
            )
        return response
    detail = response.data.get("detail") if isinstance(response.data, dict) else response.data
    code = getattr(getattr(exc, "detail", None), "code", None)
    if response.status_code == 403 and code not in ("not_authenticated", "authentication_failed"):
        code = "permission_denied"
    response.data = error_body(response.status_code, _flatten(detail), code=code if code != "error" else None)
    return response


# --- the JSON parser -------------------------------------------------------------------------------


class StrictJSONParser(JSONParser):
    """DRF's JSON parser with the strict rules of ``core.strict_json``."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode((parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET)
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(f"JSON parse error: the body is not UTF-8 ({exc.reason}).") from exc
        if not text.strip():
            return {}
        try:
            return strict_json.loads(text)
        except strict_json.StrictJSONError as exc:
            where = f" (field {exc.field!r})" if exc.field else ""
            raise exceptions.ParseError(f"JSON parse error: {exc.message}{where}.") from exc


# --- the middleware ---------------------------------------------------------------------------------


def body_limit_bytes() -> int:
    """The largest request body accepted: the import limit plus room for the form's other fields."""
    return int(settings.IMPORT_MAX_BYTES) + 256 * 1024


def _bad_text(values: Any) -> str | None:
    for key, items in values.lists():
        for text in (key, *items):
            if isinstance(text, str):
                problem = strict_json.text_problem(text)
                if problem:
                    return f"The parameter {key!r} {problem}."
    return None


class InputGuardMiddleware:
    """Refuses what no view can store or should parse, before any view runs (see the module doc)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = self._refusal(request)
        if refused is not None:
            status_code, message = refused
            if request.path.startswith(API_PREFIX):
                return JsonResponse(error_body(status_code, message), status=status_code)
            return HttpResponse(message, status=status_code, content_type="text/plain; charset=utf-8")
        return self.get_response(request)

    def _refusal(self, request: HttpRequest) -> tuple[int, str] | None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return 400, "The Content-Length header is not a number."
        limit = body_limit_bytes()
        if length > limit:
            return 413, (
                f"The request body is {length / 1024 / 1024:.1f} MB; the limit is "
                f"{settings.IMPORT_MAX_BYTES / 1024 / 1024:.3g} MB of files per import."
            )
        problem = _bad_text(request.GET)
        if problem:
            return 400, problem
        content_type = request.META.get("CONTENT_TYPE", "")
        if request.method == "POST" and content_type.startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            try:
                problem = _bad_text(request.POST)
            except Exception:
                return None
            if problem:
                return 400, problem
        return None
