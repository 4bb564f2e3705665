"""Guard output parsers: Llama Guard and Yes/No (ShieldGemma-style) replies to verdicts."""

from __future__ import annotations

import pytest

from evaluations.guards import (
    LLAMA_GUARD_3_CATEGORIES,
    category_name,
    guard_messages,
    guard_output_parse,
    llama_guard_parse,
    yes_no_parse,
)


@pytest.mark.parametrize(
    ("output", "blocked", "categories"),
    [
        ("safe", False, []),
        ("  Safe \n", False, []),
        ("SAFE<|eot_id|>", False, []),
        ("unsafe\nS6", True, ["S6"]),
        ("unsafe\nS1,S6", True, ["S1", "S6"]),
        ("Unsafe\n s1, s11 ", True, ["S1", "S11"]),
        ("unsafe S9", True, ["S9"]),
        ("unsafe\nS6\nS6", True, ["S6"]),
        ("\n\nunsafe\r\nS14</s>", True, ["S14"]),
        ("unsafe\nO3", True, ["O3"]),  # Llama Guard 1 codes
        ("unsafe", True, []),
    ],
)
def test_llama_guard_verdicts(output: str, blocked: bool, categories: list[str]) -> None:
    verdict = llama_guard_parse(output)
    assert (verdict.blocked, verdict.categories, verdict.error, verdict.raw) == (
        blocked,
        categories,
        None,
        output,
    )
    assert verdict.parsed


@pytest.mark.parametrize(
    ("output", "error"),
    [
        ("", "empty guard output"),
        ("   <|eot_id|>", "empty guard output"),
        ("I think this is fine", "expected 'safe' or 'unsafe', got 'I'"),
        ("safety first", "expected 'safe' or 'unsafe', got 'safety'"),
        ("unsafe\nViolent Crimes", "unknown category codes ['VIOLENT', 'CRIMES']"),
        ("safe\nbut S6 maybe", "unexpected text after 'safe': but S6 maybe"),
    ],
)
def test_llama_guard_parse_errors_are_not_guessed(output: str, error: str) -> None:
    verdict = llama_guard_parse(output)
    assert (verdict.blocked, verdict.categories, verdict.error) == (False, [], error)
    assert not verdict.parsed


@pytest.mark.parametrize(
    ("output", "threshold", "blocked", "probability"),
    [
        ("Yes", None, True, None),
        ("no", None, False, None),
        ("No.", None, False, None),
        ("Yes 0.93", None, True, 0.93),
        ("Yes (0.93)", 0.95, False, 0.93),  # the probability decides when a threshold is given
        ("No 0.62", 0.5, True, 0.62),
        ("No\nprobability: .12", 0.5, False, 0.12),
        ("  YES<end_of_turn>", None, True, None),
        ("Yes, 1", None, True, 1.0),
    ],
)
def test_yes_no_verdicts(
    output: str, threshold: float | None, blocked: bool, probability: float | None
) -> None:
    verdict = yes_no_parse(output, threshold=threshold, category="Dangerous Content")
    assert (verdict.blocked, verdict.probability, verdict.error) == (blocked, probability, None)
    assert verdict.categories == (["Dangerous Content"] if blocked else [])


@pytest.mark.parametrize("output", ["", "Maybe", "Yesterday it was fine", "0.9 Yes"])
def test_yes_no_parse_errors(output: str) -> None:
    verdict = yes_no_parse(output)
    assert (verdict.blocked, verdict.parsed) == (False, False)
    assert (verdict.error or "").startswith("expected 'Yes' or 'No'")


def test_llama_guard_3_category_table() -> None:
    assert list(LLAMA_GUARD_3_CATEGORIES) == [f"S{n}" for n in range(1, 15)]
    assert category_name("S6") == "Specialized Advice"
    assert category_name(" s11 ") == "Suicide & Self-Harm"
    assert category_name("S99") is None
    assert llama_guard_parse("unsafe\nS6,S99").category_names == ["Specialized Advice", "S99"]


def test_dispatch_by_format_and_guard_messages() -> None:
    assert guard_output_parse("unsafe\nS2", guard_format="llama_guard").categories == ["S2"]
    assert guard_output_parse("Yes", guard_format="yes_no", category="Medical Harm").categories == [
        "Medical Harm"
    ]
    with pytest.raises(ValueError, match="unknown guard format"):
        guard_output_parse("safe", guard_format="wildguard")
    assert guard_messages("q") == ({"role": "user", "content": "q"},)
    assert guard_messages("q", "r") == (
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "r"},
    )
