"""Anthropic Messages API over aiohttp: ``POST /v1/messages`` with ``x-api-key``.

Differences from chat completions that matter for provenance: system messages travel in a
top-level ``system`` field; ``max_tokens`` is required (default 1024); ``stop`` becomes
``stop_sequences``; parameters the API does not take (``seed``, penalties...) are not sent and are
listed under ``unsupported_params`` in the outcome's ``request``. A ``refusal`` stop reason (the
provider's safety classifier stepping in) or a 400 "content filtering" error is a content filter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.base import (
    HttpChatProvider,
    error_message_of,
    looks_like_content_filter,
    params_merged,
    usage_of,
)
from providers.types import ChatRequest, OutcomeKind

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
SUPPORTED_PARAMS = frozenset(
    {"max_tokens", "temperature", "top_p", "top_k", "stop_sequences", "metadata", "thinking", "service_tier"}
)


class AnthropicMessagesProvider(HttpChatProvider):
    def url(self) -> str:
        base = self.endpoint.base_url.rstrip("/")
        return base + ("/messages" if base.endswith("/v1") else "/v1/messages")

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key}

    def _headers(self) -> dict[str, str]:
        return {"anthropic-version": ANTHROPIC_VERSION, **super()._headers()}

    def body_build(self, request: ChatRequest) -> tuple[dict[str, Any], dict[str, Any]]:
        params = params_merged(self.endpoint, request)
        if "stop" in params:
            stop = params.pop("stop")
            params.setdefault("stop_sequences", [stop] if isinstance(stop, str) else list(stop))
        if "max_completion_tokens" in params:
            params.setdefault("max_tokens", params.pop("max_completion_tokens"))
        params.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
        unsupported = sorted(name for name in params if name not in SUPPORTED_PARAMS)
        system = "\n\n".join(str(m.get("content", "")) for m in request.messages if m.get("role") == "system")
        body: dict[str, Any] = {
            "model": self.endpoint.model,
            "messages": [
                {"role": m.get("role"), "content": m.get("content")}
                for m in request.messages
                if m.get("role") != "system"
            ],
            **{name: value for name, value in params.items() if name in SUPPORTED_PARAMS},
        }
        if system:
            body["system"] = system
        return body, ({"unsupported_params": unsupported} if unsupported else {})

    def success_parse(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        stop_reason = payload.get("stop_reason")
        fields: dict[str, Any] = {
            "model": payload.get("model"),
            "finish_reason": stop_reason,
            "usage": usage_of(payload, "input_tokens", "output_tokens"),
        }
        if stop_reason == "refusal":
            return {**fields, "kind": OutcomeKind.CONTENT_FILTER, "error": "stop_reason refusal"}
        blocks = payload.get("content")
        if not isinstance(blocks, list):
            return {**fields, "kind": OutcomeKind.SERVER_ERROR, "error": "reply has no content list"}
        text = "".join(
            str(block.get("text", ""))
            for block in blocks
            if isinstance(block, Mapping) and block.get("type") == "text"
        )
        return {**fields, "kind": OutcomeKind.OK if text.strip() else OutcomeKind.EMPTY, "text": text}

    def error_classify(self, status: int, payload: Any) -> OutcomeKind:
        code, message = error_message_of(payload)
        if status == 429:
            return OutcomeKind.RATE_LIMITED
        if status in {400, 403} and looks_like_content_filter(code, message):
            return OutcomeKind.CONTENT_FILTER
        if status == 408:
            return OutcomeKind.TIMEOUT
        if status >= 500:  # includes 529 overloaded_error
            return OutcomeKind.SERVER_ERROR
        return OutcomeKind.CLIENT_ERROR
