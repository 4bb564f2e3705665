"""Issue 15: the rating tables built with array operations are the tables built label by label
(same items in the same order, same raters, same codes, same off-rubric counts)."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.figures.agreement import _full_table, _full_table_by_label, field_table
from scoring.selectors.snapshot import campaign_data
from tests.scoring.factories import ScoringWorld

pytestmark = [pytest.mark.django_db, pytest.mark.portable]


def test_array_built_tables_equal_the_label_by_label_tables(world: ScoringWorld) -> None:
    data = campaign_data(campaign=world.campaign, user=world.maintainer)
    # One label carries a value outside the field's options (as an imported file may).
    first = data.labels[0]
    data.labels[0] = first._replace(values={**first.values, "unsafe": "perhaps"})
    specs = data.categorical_specs
    assert len(specs) >= 4
    for spec in specs:
        table, rows, off = _full_table(data, spec)
        expected, expected_rows, expected_off = _full_table_by_label(data, spec)
        assert table.item_ids == expected.item_ids
        assert table.rater_ids == expected.rater_ids
        assert np.array_equal(table.codes, expected.codes)
        assert (rows, off) == (expected_rows, expected_off)
    unsafe = data.spec("unsafe")
    assert _full_table(data, unsafe)[2] == {first.item_id: 1}
    assert field_table(data, unsafe).off_rubric == 1
    assert field_table(data, unsafe).table.codes.shape == (len(data.items), 2)
