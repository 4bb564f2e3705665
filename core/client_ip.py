"""The client's address, as allauth's rate limits see it (``ALLAUTH_TRUSTED_PROXY_COUNT``): one
definition for the lockout counters and the audit trail. Behind a reverse proxy REMOTE_ADDR is the
proxy, and anything keyed on it would treat every visitor as one."""

from allauth.account.adapter import get_adapter
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    try:
        return get_adapter(request).get_client_ip(request)
    except PermissionDenied:  # allauth's way of saying "no address at all"
        return None
