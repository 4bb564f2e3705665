"""The permission table: role x endpoint x object -> the exact status each request must get."""

import pytest
from django.test import Client

from accounts.models import ApiToken as Token
from accounts.roles import Role
from querybank.models import Query
from tests.factories import QueryFactory

pytestmark = pytest.mark.django_db

ANONYMOUS = "anonymous"
RESEARCHER = Role.RESEARCHER
CLINICIAN = Role.CLINICIAN
ADJUDICATOR = Role.ADJUDICATOR
MAINTAINER = Role.MAINTAINER
DATA_COMMITTEE = Role.DATA_COMMITTEE
ROLES = [ANONYMOUS, RESEARCHER, CLINICIAN, ADJUDICATOR, MAINTAINER, DATA_COMMITTEE]

# Path templates: {query} is an existing query's id, {missing} an id that no query has.
HOME = "/"
QUERY_LIST = "/queries/"
QUERY_DETAIL = "/queries/{query}/"
QUERY_DETAIL_MISSING = "/queries/{missing}/"
IMPORT = "/queries/import/"
EXPORT_JSONL = "/queries/export.jsonl"
INVITE = "/accounts/invite/"
API_CATEGORIES = "/api/v1/categories/"
API_QUERIES = "/api/v1/queries/"
API_QUERY = "/api/v1/queries/{query}/"
API_QUERY_MISSING = "/api/v1/queries/{missing}/"
API_SCHEMA = "/api/schema/"
API_DOCS = "/api/docs/"

LOGIN = "LOGIN"  # a page's answer to anonymous visitors: 302 to the login page, coming back after

# Expected status per endpoint, in the order of ROLES:
#   anonymous, researcher, clinician, adjudicator, maintainer, data committee.
# Pages send anonymous visitors to log in. The API answers anonymous callers 403: DRF's first
# authentication class is the session one, which has no WWW-Authenticate challenge, so DRF turns
# "not authenticated" into 403 rather than 401. Researchers and the data committee may not read
# query text, so an unknown query id is 403 for them (the permission comes before the look-up) and
# 404 for readers.
PAGE_TABLE: dict[str, tuple[object, ...]] = {
    HOME: (LOGIN, 200, 200, 200, 200, 200),
    QUERY_LIST: (LOGIN, 403, 200, 200, 200, 403),
    QUERY_DETAIL: (LOGIN, 403, 200, 200, 200, 403),
    QUERY_DETAIL_MISSING: (LOGIN, 403, 404, 404, 404, 403),
    IMPORT: (LOGIN, 403, 403, 403, 200, 403),
    EXPORT_JSONL: (LOGIN, 403, 403, 403, 200, 403),
    INVITE: (LOGIN, 403, 403, 403, 200, 403),
    API_DOCS: (LOGIN, 200, 200, 200, 200, 200),  # a page: signed-out visitors sign in
}
API_TABLE: dict[str, tuple[int, ...]] = {
    API_CATEGORIES: (403, 200, 200, 200, 200, 200),
    API_QUERIES: (403, 403, 200, 200, 200, 403),
    API_QUERY: (403, 403, 200, 200, 200, 403),
    API_QUERY_MISSING: (403, 403, 404, 404, 404, 403),
    API_SCHEMA: (403, 200, 200, 200, 200, 200),
}


def _cases(table: dict[str, tuple[object, ...]], roles: list[object]) -> list[object]:
    return [
        pytest.param(role, path, expected[ROLES.index(role)], id=f"{role}-{path}")
        for path, expected in table.items()
        for role in roles
    ]


@pytest.fixture
def query() -> Query:
    return QueryFactory()


def _url(path: str, query: Query) -> str:
    return path.format(query=query.pk, missing=query.pk + 100_000)


def _read(response: object) -> bytes:
    # Consume a streamed body: an export that fails half-way must fail the test, not pass as 200.
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)  # type: ignore[attr-defined]
    return response.content  # type: ignore[attr-defined]


@pytest.mark.parametrize(("role", "path", "expected"), _cases({**PAGE_TABLE, **API_TABLE}, ROLES))
def test_session(client: Client, make_user, query: Query, role: object, path: str, expected: object) -> None:
    if role != ANONYMOUS:
        client.force_login(make_user(role))
    url = _url(path, query)
    response = client.get(url)
    _read(response)
    if expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={url}"
    else:
        assert response.status_code == expected


@pytest.mark.parametrize(("role", "path", "expected"), _cases(API_TABLE, ROLES[1:]))
def test_api_with_token(
    client: Client, make_user, query: Query, role: object, path: str, expected: int
) -> None:
    token = Token.objects.create(user=make_user(role))
    response = client.get(_url(path, query), HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == expected


@pytest.mark.parametrize("path", [API_CATEGORIES, API_QUERIES, API_SCHEMA])
def test_api_refuses_an_unknown_token(client: Client, query: Query, path: str) -> None:
    response = client.get(_url(path, query), HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert response.status_code == 403
    assert b"Invalid token." in response.content  # the schema view answers in YAML, the others in JSON


@pytest.mark.parametrize("path", [HOME, QUERY_LIST, QUERY_DETAIL])
def test_a_token_does_not_open_the_pages(client: Client, make_user, query: Query, path: str) -> None:
    # Tokens are for the API; the pages need a session, which went through login and MFA.
    token = Token.objects.create(user=make_user(CLINICIAN))
    url = _url(path, query)
    response = client.get(url, HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


def test_an_inactive_clinician_token_is_refused(client: Client, make_user, query: Query) -> None:
    user = make_user(CLINICIAN)
    token = Token.objects.create(user=user)
    user.is_active = False
    user.save(update_fields=["is_active"])
    response = client.get(API_QUERIES, HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 403
    assert response.json() == {"detail": "User inactive or deleted.", "code": "authentication_failed"}
