"""The scoring world shared by the scoring tests (built through the annotation services)."""

import pytest

from tests.scoring.factories import ScoringWorld, scoring_world


@pytest.fixture
def world(db: None) -> ScoringWorld:
    return scoring_world()
