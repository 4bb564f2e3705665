"""Schemathesis drives every operation of the API's OpenAPI schema (issue 8): no answer may be a
server error, and every status must be one the schema documents for that operation.

Bounded to fit the suite (about a minute): a few generated examples per operation
(``FUZZ_EXAMPLES``, default 6), some on objects that exist and some with a NUL character in every
filter parameter, as a superuser holding every role (the caller who reaches the most operations)
over the seeded world of tests.scoring. Hypothesis keeps no example database, so each run explores
afresh; a failure lists every operation that broke, with its case.
"""

from __future__ import annotations

import os
import time

import pytest
import schemathesis
from django.contrib.auth.models import Group
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from accounts.models import ApiToken as Token
from accounts.models import api_token_hash
from accounts.roles import Role
from annotations.models import Label
from scoring.services import report_create
from tests.scoring.factories import scoring_world

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))
BUDGET_SECONDS = 150  # the whole run; failing the budget is a finding too (an operation too slow)


@pytest.fixture
def wsgi_in_test_transaction():
    """The WSGI app, run in this test's transaction: Django would close the connection (and with it
    the test's transaction) at the start and end of every request, as its test client prevents."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_no_server_error_and_no_undocumented_status(wsgi_in_test_transaction) -> None:
    world = scoring_world(close=True)
    # One caller who reaches nearly every operation: a superuser holding every role, in the pool.
    caller = world.maintainer
    caller.is_superuser = caller.is_staff = True
    caller.save(update_fields=["is_superuser", "is_staff"])
    caller.groups.add(*Group.objects.filter(name__in=[Role.CLINICIAN.value, Role.ADJUDICATOR.value]))
    world.campaign.annotators.add(caller)
    token = Token.objects.create(user=caller)
    report = report_create(campaign=world.campaign, actor=caller, resamples=20)
    item = next(iter(world.items.values()))
    label = Label.objects.filter(item__campaign=world.campaign).first()
    # Half the generated cases address objects that exist (random ids mostly find nothing).
    real = {
        "score-campaigns": world.campaign.pk,
        "annotation-campaigns": world.campaign.pk,
        "score-reports": report.pk,
        "runs": world.run.pk,
        "responses": item.response_id,
        "queries": item.query_id,
        "categories": item.query.category_id,
        "endpoints": world.alpha.slug,
        "pipelines": "none",
        "annotation-items": item.pk,
        "adjudication": item.pk,
        "annotation-labels": label.pk,
        "annotation-rubrics": world.campaign.rubric_id,
        "annotation-guidelines": world.campaign.guideline_id,
    }
    headers = {"Authorization": f"Token {token.key}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_in_test_transaction, headers=headers)
    failures: dict[str, str] = {}
    statuses: dict[int, int] = {}
    operations = 0
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        label = f"{operation.method.upper()} {operation.path}"

        resource = operation.path.removeprefix("/api/v1/").split("/")[0]

        def existing(case: schemathesis.Case, resource: str = resource) -> schemathesis.Case:
            if case.path_parameters and resource in real:
                for name in case.path_parameters:
                    case.path_parameters[name] = real[resource]
            return case

        strategy = operation.as_strategy()
        # (not the page number: an invalid page is refused before the filters reach the database)
        names = [p.name for p in operation.query if p.name not in ("page", "page_size")]

        def with_nul(case: schemathesis.Case, names: list[str] = names) -> schemathesis.Case:
            # The probe's crash: a NUL character in any query parameter must be a 400, not a 500.
            case.query = {**(case.query or {}), **dict.fromkeys(names, "\x00")}
            return case

        if names:
            strategy = st.one_of(strategy, strategy.map(with_nul))

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=False,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=st.one_of(strategy, strategy.map(existing)))
        def check(case: schemathesis.Case) -> None:
            response = case.call_and_validate(
                headers=headers, checks=[not_a_server_error, status_code_conformance]
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if not Token.objects.filter(key_hash=api_token_hash(token.key)).exists():  # rotated by the API
                Token.objects.filter(user=caller).delete()
                Token.objects.create(user=caller, key=token.key)

        try:
            check()
        except Exception as exc:
            failures[label] = f"{type(exc).__name__}: {str(exc)[:800]}"
    elapsed = time.monotonic() - started
    print(f"fuzz: {operations} operations, statuses {sorted(statuses.items())}, {elapsed:.0f}s")
    assert operations >= 60  # the whole API was driven, not a stub of it
    # Calls were made and answered, refusals and successes alike (not a run that never connected).
    assert sum(statuses.values()) >= operations
    assert statuses.get(200, 0) + statuses.get(201, 0) > 0
    assert failures == {}
    assert elapsed < BUDGET_SECONDS
