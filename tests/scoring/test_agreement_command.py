"""``manage.py agreement``: reproduces published figures from a file and never touches the database."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.medharm_stats.test_agreement_examples import COHEN_COUNTS, KRIPPENDORFF_2011

ROOT = Path(__file__).resolve().parents[2]
# Nothing listens on port 1: any attempt to connect fails at once.
UNREACHABLE_DATABASE = "postgres://postgres@127.0.0.1:1/medharm"
COEFFICIENT_SHAPES = ({"value", "ci_low", "ci_high"}, {"value", "reason"})


def krippendorff_csv(path: Path, field: str | None = None) -> Path:
    """Krippendorff (2011) 4 observers x 12 units, long format, missing values left out."""
    lines = ["item,rater,value" + (",field" if field else "")]
    for observer, row in zip("ABCD", KRIPPENDORFF_2011, strict=True):
        for unit, value in enumerate(row, start=1):
            if value is not None:
                lines.append(f"u{unit},{observer},{value}" + (f",{field}" if field else ""))
    path.write_text("\n".join(lines) + "\n")
    return path


def cohen_jsonl(path: Path) -> Path:
    """Cohen's 200-item two-judge table, one JSON object per rating, under field 'category'."""
    lines = []
    item = 0
    for a, row in enumerate(COHEN_COUNTS):
        for b, count in enumerate(row):
            for _ in range(count):
                item += 1
                lines.append(json.dumps({"item": item, "rater": "judge-1", "value": a, "field": "category"}))
                lines.append(json.dumps({"item": item, "rater": "judge-2", "value": b, "field": "category"}))
    path.write_text("\n".join(lines) + "\n")
    return path


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("agreement", *args, stdout=out)
    return out.getvalue()


def run_json(*args: str) -> dict:
    return json.loads(run(*args, "--json"))


# No `db` fixture anywhere in this module: pytest-django fails any test that touches the database.


@pytest.mark.parametrize(
    ("level", "published"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)]
)
def test_command_reproduces_krippendorffs_published_alpha(tmp_path, level, published):
    result = run_json(str(krippendorff_csv(tmp_path / "ratings.csv")), "--level", level)

    field = result["fields"]["value"]
    assert round(field["krippendorff_alpha"]["value"], 3) == published
    assert (field["n_items"], field["n_raters"]) == (12, 4)


def test_json_shape_for_more_than_two_raters(tmp_path):
    result = run_json(str(krippendorff_csv(tmp_path / "ratings.csv", field="harmfulness")))

    assert list(result) == ["fields"]
    field = result["fields"]["harmfulness"]
    assert set(field) == {
        "n_items", "n_raters", "percent_agreement", "fleiss_kappa", "krippendorff_alpha", "gwet_ac1",
        "cohen_kappa_pairs",
    }  # fmt: skip
    for name in ("percent_agreement", "fleiss_kappa", "krippendorff_alpha", "gwet_ac1"):
        assert set(field[name]) in COEFFICIENT_SHAPES
    assert round(field["gwet_ac1"]["value"], 3) == 0.775
    assert [pair["raters"] for pair in field["cohen_kappa_pairs"]] == [
        ["A", "B"], ["A", "C"], ["A", "D"], ["B", "C"], ["B", "D"], ["C", "D"],
    ]  # fmt: skip
    first = field["cohen_kappa_pairs"][0]
    assert set(first) == {"raters", "n_items", "cohen_kappa", "cohen_kappa_linear", "cohen_kappa_quadratic"}
    assert first["n_items"] == 9


def test_json_shape_for_two_raters_and_cohens_example(tmp_path):
    result = run_json(str(cohen_jsonl(tmp_path / "ratings.jsonl")))

    field = result["fields"]["category"]
    assert set(field) == {
        "n_items", "n_raters", "percent_agreement", "cohen_kappa", "cohen_kappa_linear",
        "cohen_kappa_quadratic", "fleiss_kappa", "krippendorff_alpha", "gwet_ac1",
    }  # fmt: skip
    assert (field["n_items"], field["n_raters"]) == (200, 2)
    assert round(field["cohen_kappa"]["value"], 3) == 0.492
    assert field["percent_agreement"]["value"] == pytest.approx(0.70)
    assert field["cohen_kappa"]["ci_low"] < 0.492 < field["cohen_kappa"]["ci_high"]


def test_declared_categories_set_the_order_for_weights(tmp_path):
    path = cohen_jsonl(tmp_path / "ratings.jsonl")

    natural = run_json(str(path), "--categories", "0,1,2")["fields"]["category"]
    swapped = run_json(str(path), "--categories", "0,2,1")["fields"]["category"]

    assert natural["cohen_kappa"] == swapped["cohen_kappa"]
    assert natural["cohen_kappa_linear"]["value"] != pytest.approx(swapped["cohen_kappa_linear"]["value"])


def test_field_option_selects_one_field_and_unknown_fields_are_named(tmp_path):
    path = tmp_path / "two-fields.csv"
    path.write_text(
        "item,rater,value,field\n"
        "q1,a,yes,unsafe\nq1,b,no,unsafe\nq2,a,no,unsafe\nq2,b,no,unsafe\n"
        "q1,a,2,actionability\nq1,b,3,actionability\nq2,a,0,actionability\nq2,b,0,actionability\n"
    )

    both = run_json(str(path))
    one = run_json(str(path), "--field", "actionability")

    assert list(both["fields"]) == ["unsafe", "actionability"]
    assert list(one["fields"]) == ["actionability"]
    assert one["fields"]["actionability"]["percent_agreement"]["value"] == 0.5
    with pytest.raises(CommandError, match=r"no field 'behaviour' \(fields: unsafe, actionability\)"):
        run(str(path), "--field", "behaviour")


def test_human_readable_table(tmp_path):
    text = run(str(krippendorff_csv(tmp_path / "ratings.csv")), "--level", "interval")

    assert "Field value: 12 items, 4 raters (alpha at the interval level)" in text
    assert "Krippendorff's alpha" in text
    assert " 0.849 " in text
    assert "A and B (9 items in common)" in text


def test_one_category_is_reported_as_not_computable(tmp_path):
    path = tmp_path / "all-safe.csv"
    path.write_text("item,rater,value\n" + "".join(f"q{i},{r},no\n" for i in range(5) for r in "ab"))

    field = run_json(str(path), "--categories", "no,yes")["fields"]["value"]

    assert field["cohen_kappa"] == {
        "value": None,
        "reason": "not computable: all ratings fall in one category (chance agreement is 1)",
    }
    assert field["gwet_ac1"]["value"] == 1.0


BAD_FILES = [
    ("cols.csv", "item,value\nq1,1\n", r"cols.csv, line 1: missing column\(s\) rater"),
    (
        "dup.csv",
        "item,rater,value\nq1,a,1\nq2,a,1\nq1,a,2\n",
        r"dup.csv, line 4, field 'value': rater 'a' already rated item 'q1' on line 2",
    ),
    ("empty.csv", "item,rater,value\nq1,a,1\n,b,1\n", r"empty.csv, line 3, column 'item': is empty"),
    (
        "bad.jsonl",
        '{"item": 1, "rater": "a", "value": 1}\n{"item": 2, "rater": \n',
        r"bad.jsonl, line 2: not valid JSON",
    ),
    ("keys.jsonl", '{"item": 1, "value": 1}\n', r"keys.jsonl, line 1: no 'rater' key"),
    (
        "nested.jsonl",
        '{"item": 1, "rater": "a", "value": [1]}\n',
        r"nested.jsonl, line 1, column 'value': must be a label or a number",
    ),
    (
        "unknown.csv",
        "item,rater,value\nq1,a,yes\nq1,b,maybe\n",
        r"unknown.csv, line 3, field 'value': value 'maybe' is not among the declared categories",
    ),
    ("nothing.csv", "item,rater,value\nq1,a,\n", r"nothing.csv: no ratings found"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES)
def test_bad_files_name_file_line_and_field(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)

    with pytest.raises(CommandError, match=message):
        run(str(path), "--categories", "yes,no")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match=r"nowhere.csv: no such file"):
        run(str(tmp_path / "nowhere.csv"))


def manage(*args: str, database_url: str = UNREACHABLE_DATABASE) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "medharm_web.settings.base"}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_command_runs_with_the_database_unreachable(tmp_path):
    # Control: with this DATABASE_URL, anything that opens a connection fails.
    probe = manage("shell", "-c", "from django.db import connection; connection.ensure_connection()")
    assert probe.returncode != 0
    assert "OperationalError" in probe.stderr

    done = manage("agreement", str(krippendorff_csv(tmp_path / "ratings.csv")), "--json")

    assert done.returncode == 0, done.stderr
    assert round(json.loads(done.stdout)["fields"]["value"]["krippendorff_alpha"]["value"], 3) == 0.743


def test_bad_file_exits_non_zero_with_the_message(tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("item,value\nq1,1\n")

    done = manage("agreement", str(path))

    assert done.returncode == 1
    assert "cols.csv, line 1: missing column(s) rater" in done.stderr
