"""The scoring world shared by the scoring tests (built through the annotation services)."""

import pytest

from tests.scoring.factories import ScoringWorld, scoring_world


@pytest.fixture
def world(db: None) -> ScoringWorld:
    return scoring_world()


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Cached figures are keyed by the campaign's state; a fresh cache per test keeps them apart."""
    from django.core.cache import cache

    cache.clear()
