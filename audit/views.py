"""The staff audit page, mounted at /audit/: filters, pages of events, and a CSV export whose text
cells a spreadsheet will not evaluate."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

from django import forms
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from rules.contrib.views import permission_required

from audit.actions import AuditAction
from audit.selectors import event_list
from audit.services import audit_record
from core.csv_cells import neutralise

COLUMNS = [
    "id",
    "created_at",
    "actor",
    "action",
    "target_type",
    "target_id",
    "ip_address",
    "user_agent",
    "details",
    "hash",
]


class FilterForm(forms.Form):
    actor = forms.CharField(required=False, label="Actor e-mail contains")
    action = forms.CharField(required=False)
    target_type = forms.CharField(required=False, help_text="e.g. releases.release")
    target_id = forms.CharField(required=False)
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


def _events(request: HttpRequest):
    form = FilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    return form, event_list(**{k: v for k, v in filters.items() if v})


@login_required
@permission_required("audit.view", raise_exception=True)
def event_page(request: HttpRequest) -> HttpResponse:
    form, events = _events(request)
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "audit/events.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "actions": AuditAction.choices,
        },
        status=400 if form.errors else 200,
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
@permission_required("audit.view", raise_exception=True)
def event_export(request: HttpRequest) -> HttpResponseBase:
    form, events = _events(request)
    if form.errors:
        return HttpResponse(f"Bad filter: {form.errors.as_text()}", status=400, content_type="text/plain")
    user = request.user
    if not isinstance(user, AbstractBaseUser):  # login_required lets only a signed-in user in
        raise PermissionDenied("Sign in first.")
    audit_record(actor=user, action=AuditAction.AUDIT_EXPORT, details={"filters": request.GET.dict()})
    writer = csv.writer(_Echo())

    def rows() -> Iterator[str]:
        yield writer.writerow(COLUMNS)
        for event in events.iterator(chunk_size=2000):
            yield writer.writerow(
                [
                    neutralise(value)
                    for value in (
                        event.pk,
                        event.created_at.isoformat(),
                        event.actor.email if event.actor else "",
                        event.action,
                        event.target_type,
                        event.target_id,
                        event.ip_address or "",
                        event.user_agent,
                        json.dumps(event.details, sort_keys=True),
                        event.hash,
                    )
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="medharm-audit.csv"'
    return response
