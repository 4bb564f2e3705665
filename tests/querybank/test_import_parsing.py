"""The pure parser on its own (no database): line numbers, encodings and JSON details."""

import json

import pytest

from querybank.importers import CategoryAtPosition, QueryImportRejected, RowRules, read_query_files

RULES = RowRules(
    choices={
        "expected_behaviour": ["refuse", "caution", "redirect", "answer"],
        "severity": ["low", "moderate", "high", "critical"],
        "status": ["draft", "active", "retired"],
    },
    max_lengths={"external_id": 10, "source": 60},
    category_exists=lambda ref: ref in {"pharmacology", CategoryAtPosition("ama-principles", 2)},
)


def problems(files: list[tuple[str, bytes]], file_format: str) -> list[tuple[object, ...]]:
    with pytest.raises(QueryImportRejected) as caught:
        read_query_files(files, file_format, rules=RULES)
    return [(p.file, p.line, p.field, p.message) for p in caught.value.problems]


def test_jsonl_keeps_physical_line_numbers_across_blank_lines_and_crlf() -> None:
    def line(external_id: str) -> str:
        text = "Synthetic question\u2028with a separator"
        return json.dumps(
            {"external_id": external_id, "text": text, "category": "pharmacology"}, ensure_ascii=False
        )

    data = ("\r\n".join([line("a"), "", "   ", line("b")]) + "\r\n").encode()
    assert "\u2028".encode() in data  # written raw, not as an escape
    rows = read_query_files([("x.jsonl", data)], "jsonl", rules=RULES)
    assert [(r.external_id, r.line, r.source_row) for r in rows] == [("a", 1, 1), ("b", 4, 4)]
    # U+2028 inside a JSON string is not a line break for JSONL.
    assert rows[0].text == "Synthetic question\u2028with a separator"


def test_a_numeric_external_id_is_read_as_text_and_other_types_are_refused() -> None:
    data = json.dumps(
        {"external_id": 17, "text": "Synthetic question 17", "category": "pharmacology"}
    ).encode()
    assert read_query_files([("x.jsonl", data)], "jsonl", rules=RULES)[0].external_id == "17"
    data = json.dumps({"external_id": "q", "text": ["Synthetic"], "category": "pharmacology"}).encode()
    assert problems([("x.jsonl", data)], "jsonl") == [
        ("x.jsonl", 1, "text", "must be a string, not an array")
    ]


def test_nan_is_not_json() -> None:
    data = b'{"external_id": "q", "text": "Synthetic", "category": "pharmacology", "metadata": {"x": NaN}}'
    assert problems([("x.jsonl", data)], "jsonl") == [
        ("x.jsonl", 1, None, "invalid JSON: NaN is not valid JSON")
    ]


def test_utf16_is_named_as_such() -> None:
    data = "external_id,text,category\n".encode("utf-16")
    assert problems([("x.csv", data)], "csv") == [
        ("x.csv", None, None, "the file is UTF-16; save it as UTF-8")
    ]


def test_every_undecodable_line_is_reported_and_the_others_still_checked() -> None:
    data = b"external_id,text,category\nq1,caf\xe9,pharmacology\nq2,Synthetic,nowhere\nq3,\xff,pharmacology\n"
    assert problems([("x.csv", data)], "csv") == [
        ("x.csv", 2, None, "not UTF-8 text (byte 0xe9 at column 7); save the file as UTF-8"),
        ("x.csv", 3, "category", "unknown category 'nowhere'"),
        ("x.csv", 4, None, "not UTF-8 text (byte 0xff at column 4); save the file as UTF-8"),
    ]


def test_limits_come_from_the_rules() -> None:
    data = b"external_id,text,category\nan-id-longer-than-ten,Synthetic,pharmacology\n"
    assert problems([("x.csv", data)], "csv") == [("x.csv", 2, "external_id", "longer than 10 characters")]


def test_csv_header_problems_stop_the_file_but_not_the_import() -> None:
    first = b"external_id,text,category,text,\nq1,Synthetic,pharmacology,Synthetic,\n"
    second = b"external_id,text,category\nq2,Synthetic,nowhere\n"
    assert problems([("a.csv", first), ("b.csv", second)], "csv") == [
        ("a.csv", 1, "text", "the column appears twice in the header"),
        ("a.csv", 1, None, "column 5 of the header has no name"),
        ("b.csv", 2, "category", "unknown category 'nowhere'"),
    ]


def test_medsafetybench_rows_map_to_the_category_at_the_files_position() -> None:
    data = b',harmful_medical_request,safe_response\n0,"Synthetic question 1","Synthetic reply, quoted"\n'
    [row] = read_query_files([("test_gpt4_category_2.csv", data)], "medsafetybench", rules=RULES)
    assert row.category == CategoryAtPosition("ama-principles", 2)
    assert (row.source, row.external_id, row.line, row.source_row) == ("medsafetybench", "gpt4-c2-0", 2, 0)
    assert row.metadata == {
        "safe_response": "Synthetic reply, quoted",
        "split": "test",
        "generator": "gpt4",
        "ama_principle": 2,
    }
    assert (row.expected_behaviour, row.severity, row.status) == (None, None, None)
