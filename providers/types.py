"""Value types shared by the provider clients: endpoint configuration, requests and call outcomes."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any


class EndpointKind(enum.StrEnum):
    OPENAI_CHAT = "openai_chat"
    ANTHROPIC_MESSAGES = "anthropic_messages"


class OutcomeKind(enum.StrEnum):
    """What one HTTP attempt produced. The first three are final answers; the rest are failures."""

    OK = "ok"
    EMPTY = "empty"
    CONTENT_FILTER = "content_filter"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    CLIENT_ERROR = "client_error"


# An item whose last attempt ended in one of these is done: it is recorded and never retried.
RECORDED_KINDS = frozenset({OutcomeKind.OK, OutcomeKind.EMPTY, OutcomeKind.CONTENT_FILTER})
# Transient failures: worth another attempt while the retry policy allows it.
RETRYABLE_KINDS = frozenset(
    {OutcomeKind.RATE_LIMITED, OutcomeKind.SERVER_ERROR, OutcomeKind.TIMEOUT, OutcomeKind.CONNECTION_ERROR}
)


@dataclass(frozen=True)
class EndpointConfig:
    """A registered model endpoint, as the client layer needs it.

    ``base_url`` for OpenAI-compatible servers includes the version prefix, as the ``openai`` SDK
    expects (``https://api.openai.com/v1``, ``http://127.0.0.1:8000/v1``); for Anthropic it may be
    given with or without ``/v1``. ``api_key_env`` is the NAME of the environment variable holding
    the key (``None`` for local servers without auth): the key itself never enters this object.
    """

    kind: EndpointKind
    base_url: str
    model: str
    api_key_env: str | None = None
    default_params: Mapping[str, Any] = field(default_factory=dict)
    max_concurrency: int = 16
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    price_input_per_million: Decimal | None = None
    price_output_per_million: Decimal | None = None
    timeout_s: float = 120.0
    connect_timeout_s: float = 10.0
    # Non-secret headers only (e.g. an OpenRouter referer); the key goes through api_key_env.
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", EndpointKind(self.kind))
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        for header in self.extra_headers:
            if header.lower() in {"authorization", "x-api-key", "api-key"}:
                raise ValueError(f"extra_headers may not carry credentials ({header}); use api_key_env")


@dataclass(frozen=True)
class ChatRequest:
    """One chat call: messages (``role``/``content`` dicts, ``system`` allowed) and generation
    parameters (``temperature``, ``top_p``, ``max_tokens``, ``seed``, ``stop``...), which override
    the endpoint's ``default_params``. ``item_id`` is the caller's opaque key (e.g. a response row
    id), carried through to the result untouched."""

    messages: tuple[Mapping[str, str], ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    item_id: Any = None

    @classmethod
    def from_prompt(
        cls, prompt: str, *, system: str | None = None, item_id: Any = None, **params: Any
    ) -> ChatRequest:
        messages: list[Mapping[str, str]] = []
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": prompt})
        return cls(messages=tuple(messages), params=params, item_id=item_id)

    def estimated_tokens(self, default_max_tokens: int = 512) -> int:
        """A rough token count for the tokens-per-minute bucket (4 characters a token)."""
        prompt_chars = sum(len(str(message.get("content", ""))) for message in self.messages)
        max_tokens = self.params.get("max_tokens") or self.params.get("max_completion_tokens")
        return prompt_chars // 4 + 4 * len(self.messages) + int(max_tokens or default_max_tokens)


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class CallOutcome:
    """The result of one HTTP attempt, with everything provenance needs. Never holds the API key:
    ``request`` is the JSON body and URL sent (the key travels only in a header we do not record),
    and every text field is scrubbed of the key before it gets here."""

    kind: OutcomeKind
    request: Mapping[str, Any]
    text: str = ""
    finish_reason: str | None = None
    model: str | None = None
    raw: Mapping[str, Any] | None = None
    usage: Usage = field(default_factory=Usage)
    latency_ms: float = 0.0
    http_status: int | None = None
    error: str | None = None
    error_body: str | None = None
    retry_after_s: float | None = None
    started_at: float = 0.0  # Unix time the attempt was sent

    @property
    def is_recorded(self) -> bool:
        return self.kind in RECORDED_KINDS

    @property
    def is_retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = str(self.kind)
        return data


@dataclass(frozen=True)
class CallResult:
    """How one request ended after retries: ``outcome`` is the last attempt, ``attempts`` all of
    them in order (the last included). ``terminal_reason`` is set exactly when the item failed:
    a non-retryable client error or a retryable failure that ran out of attempts."""

    request: ChatRequest
    outcome: CallOutcome
    attempts: tuple[CallOutcome, ...]
    terminal_reason: str | None = None

    @property
    def item_id(self) -> Any:
        return self.request.item_id

    @property
    def kind(self) -> OutcomeKind:
        return self.outcome.kind

    @property
    def succeeded(self) -> bool:
        """True when the item is done (an answer, an empty reply or a content-filter refusal)."""
        return self.terminal_reason is None

    @property
    def usage(self) -> Usage:
        """Tokens billed over all attempts (failed attempts usually bill nothing, but may)."""
        return Usage(
            input_tokens=sum(a.usage.input_tokens for a in self.attempts),
            output_tokens=sum(a.usage.output_tokens for a in self.attempts),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "kind": str(self.kind),
            "terminal_reason": self.terminal_reason,
            "outcome": self.outcome.to_dict(),
            "attempts": [attempt.to_dict() for attempt in self.attempts],
        }
