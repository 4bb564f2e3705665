"""The batch helpers of ``core.csv_cells`` write what ``csv.writer`` and ``neutralise`` write, cell
for cell, on random awkward text (issue 15: exports write a column at a time)."""

from __future__ import annotations

import csv
import io
import random

from core.csv_cells import csv_quoted, csv_rows, marked_column, neutralise

ALPHABET = ["a", ",", '"', "\n", "\r", " ", "'", "=", "+", "-", "@", "\t", "é", "☃", "\u2028", "\x1e", "\x1f"]


class Text(str):
    pass


def _text(rng: random.Random, longest: int = 6) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, longest)))


def _written(rows: list[tuple[object, ...]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def test_a_quoted_cell_is_the_writers() -> None:
    rng = random.Random(15)
    for _ in range(5000):
        text = _text(rng)
        assert _written([("x", text)]) == "x," + csv_quoted(text) + "\r\n", repr(text)
    assert csv_quoted('say "hi", then\nleave') == '"say ""hi"", then\nleave"'
    assert csv_quoted("plain") == "plain"


def test_a_marked_column_is_neutralise_cell_by_cell() -> None:
    rng = random.Random(16)
    kinds = [None, 0, 1, True, False, 2.5, {"a": "=b"}, ["=c"], Text("=d"), Text("e")]
    for _ in range(3000):
        column = [rng.choice([*kinds, _text(rng, 3)]) for _ in range(rng.randint(0, 40))]
        marked = marked_column(column)
        assert marked == [neutralise(v) for v in column]
        assert [type(v) for v in marked] == [type(neutralise(v)) for v in column]  # True stays True
    few = ["=a", "b", None, "-c", "'d", ""] * 20  # few distinct texts: each marked once
    assert marked_column(few) == ["'=a", "b", None, "'-c", "''d", ""] * 20
    assert marked_column([1, True, None]) == [1, True, None]


def test_rows_with_long_cells_joined_in_are_the_writers() -> None:
    rng = random.Random(17)
    for _ in range(500):
        n = rng.randint(1, 30)
        columns: list[list[object]] = [
            [rng.choice(["a", "'=b", None, 1, True]) for _ in range(n)],
            [rng.choice([None, _text(rng, 12)]) for _ in range(n)],
            [rng.choice([None, 2.5, 7, _text(rng, 4)]) for _ in range(n)],
            [_text(rng, 3) for _ in range(n)],
        ]
        expected = _written(list(zip(*columns, strict=True)))
        assert csv_rows(columns, long_text=(1, 2)) == expected
        assert csv_rows(columns) == expected
    # A cell holding the placeholder itself: the batch is written by the writer alone.
    held = [["\x1e\x1f", "x"], ['"q"', "\x1e\x1fz"]]
    assert csv_rows(held, long_text=(1,)) == _written(list(zip(*held, strict=True)))
