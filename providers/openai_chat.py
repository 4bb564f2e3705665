"""OpenAI-compatible chat completions (OpenAI, Azure-style filters, vLLM, TGI, Ollama, LM Studio).

``OpenAIChatProvider`` posts with aiohttp: the default, because it keeps the raw reply, headers
and error bodies without SDK model parsing, and measured cheapest under 64-way concurrency (about
a tenth of the SDK's CPU per request; docs/collection.md). ``OpenAISDKChatProvider`` does the same
through ``openai.AsyncOpenAI`` with ``max_retries=0`` (we own retries), kept for comparison and
for servers where the SDK's own handling matters.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from providers.base import (
    ERROR_BODY_LIMIT,
    ChatProvider,
    HttpChatProvider,
    error_message_of,
    logger,
    looks_like_content_filter,
    params_merged,
    retry_after_parse,
    usage_of,
)
from providers.secrets import DEFAULT_KEY_POLICY, KeyEnvPolicy
from providers.types import CallOutcome, ChatRequest, EndpointConfig, OutcomeKind


def openai_body_build(endpoint: EndpointConfig, request: ChatRequest) -> dict[str, Any]:
    return {
        "model": endpoint.model,
        "messages": [dict(message) for message in request.messages],
        **params_merged(endpoint, request),
    }


def openai_success_parse(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Outcome fields from a 200 chat-completion body. A ``content_filter`` finish is a filter
    outcome with no text (a partial answer stays in ``raw`` only, never as the response)."""
    fields: dict[str, Any] = {
        "model": payload.get("model"),
        "usage": usage_of(payload, "prompt_tokens", "completion_tokens"),
    }
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        return {**fields, "kind": OutcomeKind.SERVER_ERROR, "error": "reply has no choices"}
    choice = choices[0]
    raw_message = choice.get("message")
    message = raw_message if isinstance(raw_message, Mapping) else {}
    finish_reason = choice.get("finish_reason")
    fields["finish_reason"] = finish_reason
    if finish_reason == "content_filter":
        return {**fields, "kind": OutcomeKind.CONTENT_FILTER, "error": "finish_reason content_filter"}
    content = message.get("content")
    if isinstance(content, list):  # some servers return content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
    text = content if isinstance(content, str) else ""
    if not text.strip() and isinstance(message.get("refusal"), str) and message["refusal"].strip():
        text = message["refusal"]  # the model's own refusal is an answer, not a provider filter
    if not text.strip():
        return {**fields, "kind": OutcomeKind.EMPTY, "text": text}
    return {**fields, "kind": OutcomeKind.OK, "text": text}


def openai_error_classify(status: int, payload: Any) -> OutcomeKind:
    code, message = error_message_of(payload)
    if status == 429:
        # An exhausted quota does not come back by waiting: retrying only burns attempts.
        return OutcomeKind.CLIENT_ERROR if code == "insufficient_quota" else OutcomeKind.RATE_LIMITED
    if status in {400, 403, 422} and looks_like_content_filter(code, message):
        return OutcomeKind.CONTENT_FILTER
    if status == 408:
        return OutcomeKind.TIMEOUT
    if status >= 500:
        return OutcomeKind.SERVER_ERROR
    return OutcomeKind.CLIENT_ERROR


class OpenAIChatProvider(HttpChatProvider):
    """POST ``{base_url}/chat/completions`` with a bearer key."""

    def url(self) -> str:
        return self.endpoint.base_url.rstrip("/") + "/chat/completions"

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"}

    def body_build(self, request: ChatRequest) -> tuple[dict[str, Any], dict[str, Any]]:
        return openai_body_build(self.endpoint, request), {}

    def success_parse(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return openai_success_parse(payload)

    def error_classify(self, status: int, payload: Any) -> OutcomeKind:
        return openai_error_classify(status, payload)


class OpenAISDKChatProvider(ChatProvider):
    """The same contract through the official SDK (``openai.AsyncOpenAI``, ``max_retries=0``)."""

    def __init__(
        self,
        endpoint: EndpointConfig,
        *,
        environ: Mapping[str, str] | None = None,
        key_policy: KeyEnvPolicy = DEFAULT_KEY_POLICY,
    ) -> None:
        super().__init__(endpoint, environ=environ, key_policy=key_policy)
        self._sdk: Any = None

    def _client(self) -> Any:
        if self._sdk is None:
            import openai  # imported lazily: the default path does not need it

            self._sdk = openai.AsyncOpenAI(
                # The SDK insists on a key; local servers without auth ignore the placeholder.
                api_key=self._api_key.reveal() or "no-key",
                base_url=self.endpoint.base_url,
                max_retries=0,
                timeout=self.endpoint.timeout_s,
                default_headers=dict(self.endpoint.extra_headers),
            )
        return self._sdk

    async def complete(self, request: ChatRequest) -> CallOutcome:
        import openai

        body = openai_body_build(self.endpoint, request)
        sent = {"url": self.endpoint.base_url.rstrip("/") + "/chat/completions", "body": body}
        started_at = time.time()
        started = time.perf_counter()
        fields: dict[str, Any]
        try:
            response = await self._client().chat.completions.with_raw_response.create(**body)
        except openai.APITimeoutError:
            fields = {
                "kind": OutcomeKind.TIMEOUT,
                "error": f"APITimeoutError after {self.endpoint.timeout_s:g}s",
            }
        except openai.APIConnectionError as exc:
            fields = {
                "kind": OutcomeKind.CONNECTION_ERROR,
                "error": self._api_key.scrub(f"{type(exc).__name__}: {exc}"),
            }
        except openai.APIStatusError as exc:
            text = self._api_key.scrub(exc.response.text)
            try:
                payload: Any = self._api_key.scrub_json(json.loads(exc.response.text))
            except (ValueError, RecursionError):
                payload = None
            code, message = error_message_of(payload)
            status = exc.status_code
            fields = {
                "kind": openai_error_classify(status, payload),
                "http_status": status,
                "raw": payload if isinstance(payload, Mapping) else None,
                "error": f"HTTP {status}"
                + (f" {code}" if code else "")
                + (f": {message[:300]}" if message else ""),
                "error_body": text[:ERROR_BODY_LIMIT],
                "retry_after_s": retry_after_parse(exc.response.headers),
            }
        else:
            text = self._api_key.scrub(response.text)
            try:
                payload = self._api_key.scrub_json(json.loads(response.text))
            except (ValueError, RecursionError):
                payload = None
            if isinstance(payload, Mapping):
                fields = {
                    "http_status": response.status_code,
                    "raw": payload,
                    **openai_success_parse(payload),
                }
            else:
                fields = {
                    "kind": OutcomeKind.SERVER_ERROR,
                    "http_status": response.status_code,
                    "error": "reply is not a JSON object",
                    "error_body": text[:ERROR_BODY_LIMIT],
                }
        latency_ms = (time.perf_counter() - started) * 1000
        fields = self._api_key.scrub_outcome_fields(fields)  # after decoding, every path alike
        outcome = CallOutcome(request=sent, latency_ms=latency_ms, started_at=started_at, **fields)
        logger.debug(
            "endpoint=%s model=%s outcome=%s latency_ms=%.0f",
            self.endpoint.name,
            self.endpoint.model,
            outcome.kind,
            latency_ms,
        )
        return outcome

    async def aclose(self) -> None:
        if self._sdk is not None:
            await self._sdk.close()
        self._sdk = None
