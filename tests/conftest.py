"""Suite-wide fixtures. The suite runs on the real PostgreSQL and Redis, and stops at once if either
is missing: a skipped service test proves nothing.

One exception, and only by asking for it: tests marked ``portable`` (pages and browser journeys that
must also work on the embedded SQLite default that ``bin/serve`` runs) may run a second time with a
``sqlite:///`` DATABASE_URL and ``-m portable``. Any other selection on SQLite stops at once, and a
test not marked ``portable`` is never collected there, so PostgreSQL stays the database of the rest.
"""

import os

import psycopg
import pytest
import redis
from django.conf import settings

from tests.factories import UserFactory

PORTABLE = "portable"


def _on_sqlite() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")


def pytest_sessionstart(session: pytest.Session) -> None:
    database = settings.DATABASES["default"]
    if _on_sqlite() and session.config.getoption("markexpr") == PORTABLE:
        return  # the embedded default: no server, tasks in-process, no Redis (as bin/serve runs)
    if "postgresql" not in database["ENGINE"]:
        pytest.exit(
            f"The tests run on PostgreSQL; DATABASE_URL points at {database['ENGINE']} "
            f"(only `-m {PORTABLE}` runs on SQLite).",
            returncode=3,
        )
    try:
        psycopg.connect(
            host=database["HOST"] or "127.0.0.1",
            port=database["PORT"] or 5432,
            user=database["USER"] or "postgres",
            password=database["PASSWORD"] or None,
            dbname="postgres",
            connect_timeout=5,
        ).close()
    except psycopg.OperationalError as exc:
        pytest.exit(f"PostgreSQL is not reachable ({exc}); start it (see README).", returncode=3)
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        pytest.exit(
            f"Redis is not reachable at {settings.REDIS_URL} ({exc}); start it (see README).", returncode=3
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _on_sqlite():
        return
    # Belt and braces beside the marker expression: on SQLite only portable tests may run.
    kept = [item for item in items if item.get_closest_marker(PORTABLE)]
    dropped = [item for item in items if not item.get_closest_marker(PORTABLE)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(autouse=True)
def _no_axes_state_between_tests(settings: object) -> None:
    """Lockout counters live in the database, which each test rolls back; nothing else to reset."""


@pytest.fixture(autouse=True)
def _no_kept_snapshots() -> None:
    """The scores pages keep campaign snapshots in process memory, keyed by the campaign's state;
    a rolled-back test database may give the next test's campaign the same id and state."""
    from scoring.snapshots import recent_snapshots

    recent_snapshots.clear()


@pytest.fixture
def password() -> str:
    return "a-long-test-password-1"


@pytest.fixture
def make_user(db: None, password: str):
    """``make_user(role)`` → an active user with that role, a verified address and ``password``."""

    def make(role: object = None, **kwargs: object):
        return UserFactory(role=role, password=password, **kwargs)

    return make


@pytest.fixture(scope="session")
def shared_datasets_dir() -> str:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(os.path.dirname(here), "shared", "datasets")
