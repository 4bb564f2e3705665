"""Parsers for guard-model output: Llama Guard (``safe`` / ``unsafe`` + codes) and Yes/No guards.

A guard's reply becomes a ``GuardVerdict``. Output that fits neither format is NOT guessed at:
the verdict carries ``error`` (and ``blocked=False``), and the pipeline decides whether an
unreadable guard blocks (fail closed) or passes (fail open). Pure module, no Django import.

Guard requests go through the ordinary chat providers: servers that host Llama Guard or ShieldGemma
(vLLM, TGI, Ollama) apply the guard's own prompt template to the chat messages, so an input guard
gets ``[user: query]`` and an output guard ``[user: query, assistant: response]``
(``guard_messages``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

LLAMA_GUARD = "llama_guard"
YES_NO = "yes_no"
GUARD_FORMATS = (LLAMA_GUARD, YES_NO)

# Llama Guard 3 hazard categories (MLCommons taxonomy). Llama Guard 4 keeps S1..S14.
LLAMA_GUARD_3_CATEGORIES: dict[str, str] = {
    "S1": "Violent Crimes",
    "S2": "Non-Violent Crimes",
    "S3": "Sex-Related Crimes",
    "S4": "Child Sexual Exploitation",
    "S5": "Defamation",
    "S6": "Specialized Advice",
    "S7": "Privacy",
    "S8": "Intellectual Property",
    "S9": "Indiscriminate Weapons",
    "S10": "Hate",
    "S11": "Suicide & Self-Harm",
    "S12": "Sexual Content",
    "S13": "Elections",
    "S14": "Code Interpreter Abuse",
}

# End-of-turn markers some servers leave in the text when they do not strip special tokens.
_SPECIAL_TOKENS = re.compile(r"<\|[a-z_]+\|>|</s>|<eos>|<end_of_turn>", re.IGNORECASE)
# S1..S14 (Llama Guard 2-4) and O1..O7 (Llama Guard 1).
_CATEGORY_CODE = re.compile(r"^[SO]\d{1,2}$")
_NUMBER = re.compile(r"(?<![\w.])(0(?:\.\d+)?|1(?:\.0+)?|\.\d+)(?![\w.])")


@dataclass
class GuardVerdict:
    blocked: bool
    categories: list[str] = field(default_factory=list)
    raw: str = ""
    error: str | None = None  # set when the output could not be parsed
    probability: float | None = None  # P(violation), when the guard reports one

    @property
    def parsed(self) -> bool:
        return self.error is None

    @property
    def category_names(self) -> list[str]:
        return [category_name(code) or code for code in self.categories]


def category_name(code: str) -> str | None:
    return LLAMA_GUARD_3_CATEGORIES.get(code.strip().upper())


def _clean(output: str) -> str:
    return _SPECIAL_TOKENS.sub(" ", output).strip()


def llama_guard_parse(output: str) -> GuardVerdict:
    """``safe`` -> pass; ``unsafe`` then category codes (same line or next, comma or space
    separated, any case) -> block. Anything else is a parse error."""
    text = _clean(output)
    tokens = [token for token in re.split(r"[\s,;]+", text) if token]
    if not tokens:
        return GuardVerdict(blocked=False, raw=output, error="empty guard output")
    head = tokens[0].lower().rstrip(".:")
    rest = tokens[1:]
    if head == "safe":
        if rest:
            return GuardVerdict(
                blocked=False, raw=output, error=f"unexpected text after 'safe': {' '.join(rest)[:80]}"
            )
        return GuardVerdict(blocked=False, raw=output)
    if head != "unsafe":
        return GuardVerdict(
            blocked=False, raw=output, error=f"expected 'safe' or 'unsafe', got {tokens[0][:40]!r}"
        )
    codes = [token.upper() for token in rest]
    bad = [code for code in codes if not _CATEGORY_CODE.match(code)]
    if bad:
        return GuardVerdict(blocked=False, raw=output, error=f"unknown category codes {bad[:5]}")
    # An 'unsafe' without codes is still a block; dict.fromkeys keeps order and drops repeats.
    return GuardVerdict(blocked=True, categories=list(dict.fromkeys(codes)), raw=output)


def yes_no_parse(output: str, *, threshold: float | None = None, category: str | None = None) -> GuardVerdict:
    """ShieldGemma-style: first word ``Yes`` (violates the policy) or ``No``, optionally followed by a
    probability of violation. With ``threshold`` and a probability, the probability decides.
    ``category`` names the policy that was checked, reported as the category of a block."""
    text = _clean(output)
    match = re.match(r"^\W*(yes|no)\b(.*)$", text, re.IGNORECASE | re.DOTALL)
    if match is None:
        return GuardVerdict(blocked=False, raw=output, error=f"expected 'Yes' or 'No', got {text[:40]!r}")
    answer_yes = match.group(1).lower() == "yes"
    number = _NUMBER.search(match.group(2))
    probability = float(number.group(1)) if number else None
    blocked = answer_yes if threshold is None or probability is None else probability >= threshold
    categories = [category] if blocked and category else []
    return GuardVerdict(blocked=blocked, categories=categories, raw=output, probability=probability)


def guard_output_parse(
    output: str, *, guard_format: str, threshold: float | None = None, category: str | None = None
) -> GuardVerdict:
    if guard_format == LLAMA_GUARD:
        return llama_guard_parse(output)
    if guard_format == YES_NO:
        return yes_no_parse(output, threshold=threshold, category=category)
    raise ValueError(f"unknown guard format {guard_format!r}; expected one of {GUARD_FORMATS}")


def guard_messages(prompt: str, response: str | None = None) -> tuple[dict[str, str], ...]:
    """The conversation a guard judges: the prompt alone (input guard) or prompt and reply (output)."""
    messages = [{"role": "user", "content": prompt}]
    if response is not None:
        messages.append({"role": "assistant", "content": response})
    return tuple(messages)
