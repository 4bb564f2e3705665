"""The request an audit event is written under: its client address and user agent.

A middleware sets it for each request, so every service's ``audit_record`` stamps them without
each view passing them down; outside a request (commands, Celery tasks) both stay empty.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse

from core.client_ip import client_ip


@dataclass(frozen=True)
class RequestMeta:
    ip_address: str | None = None
    user_agent: str = ""


_EMPTY = RequestMeta()
_current: ContextVar[RequestMeta] = ContextVar("audit_request_meta", default=_EMPTY)


def current_meta() -> RequestMeta:
    return _current.get()


def meta_of(request: HttpRequest) -> RequestMeta:
    return RequestMeta(
        ip_address=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:400],
    )


class AuditRequestMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _current.set(meta_of(request))
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)
