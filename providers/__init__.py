"""Provider clients for collection runs: plain asyncio + aiohttp, no Django import.

Entry points (each documented in its module):

- ``EndpointConfig`` / ``ChatRequest`` / ``CallOutcome`` / ``CallResult`` / ``OutcomeKind`` (types)
- ``provider_build(endpoint)`` -> ``ChatProvider`` (one attempt per ``complete()``; base)
- ``RetryPolicy`` (retry), ``AdaptiveConcurrencyLimiter`` / ``RateLimiter`` (limits)
- ``EndpointCaller``, ``collect_many``, ``run_bounded`` (collect)
- ``cost_of_usage`` / ``cost_for_endpoint`` (cost); ``api_key_read`` / ``ApiKey`` (secrets)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from providers.anthropic_messages import AnthropicMessagesProvider
from providers.base import ChatProvider, retry_after_parse
from providers.collect import CollectSummary, EndpointCaller, collect_many, run_bounded
from providers.cost import cost_for_endpoint, cost_of_usage
from providers.limits import AdaptiveConcurrencyLimiter, RateLimiter, TokenBucket
from providers.openai_chat import OpenAIChatProvider, OpenAISDKChatProvider
from providers.retry import RetryPolicy
from providers.secrets import (
    DEFAULT_KEY_POLICY,
    ApiKey,
    ApiKeyNotAllowedError,
    KeyEnvPolicy,
    MissingApiKeyError,
    api_key_read,
)
from providers.types import (
    RECORDED_KINDS,
    RETRYABLE_KINDS,
    CallOutcome,
    CallResult,
    ChatRequest,
    EndpointConfig,
    EndpointKind,
    OutcomeKind,
    Usage,
)

ProviderClient = Literal["aiohttp", "openai_sdk"]
"""The HTTP client an OpenAI-style provider uses: plain aiohttp, or the official SDK."""


def provider_build(
    endpoint: EndpointConfig,
    *,
    client: ProviderClient = "aiohttp",
    environ: Mapping[str, str] | None = None,
    key_policy: KeyEnvPolicy = DEFAULT_KEY_POLICY,
) -> ChatProvider:
    """The provider for ``endpoint.kind``. Raises ``MissingApiKeyError`` (naming the variable, not
    the value) when the endpoint's key variable is unset, or ``ApiKeyNotAllowedError`` (a subclass)
    when ``key_policy`` does not allow the variable."""
    if endpoint.kind == EndpointKind.ANTHROPIC_MESSAGES:
        return AnthropicMessagesProvider(endpoint, environ=environ, key_policy=key_policy)
    if client == "openai_sdk":
        return OpenAISDKChatProvider(endpoint, environ=environ, key_policy=key_policy)
    return OpenAIChatProvider(endpoint, environ=environ, key_policy=key_policy)


__all__ = [
    "RECORDED_KINDS",
    "RETRYABLE_KINDS",
    "AdaptiveConcurrencyLimiter",
    "AnthropicMessagesProvider",
    "ApiKey",
    "ApiKeyNotAllowedError",
    "CallOutcome",
    "CallResult",
    "ChatProvider",
    "ChatRequest",
    "CollectSummary",
    "EndpointCaller",
    "EndpointConfig",
    "EndpointKind",
    "KeyEnvPolicy",
    "MissingApiKeyError",
    "OpenAIChatProvider",
    "OpenAISDKChatProvider",
    "OutcomeKind",
    "ProviderClient",
    "RateLimiter",
    "RetryPolicy",
    "TokenBucket",
    "Usage",
    "api_key_read",
    "collect_many",
    "cost_for_endpoint",
    "cost_of_usage",
    "provider_build",
    "retry_after_parse",
    "run_bounded",
]
