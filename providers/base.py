"""The ``ChatProvider`` interface and the HTTP plumbing (aiohttp) shared by the concrete clients.

A provider makes exactly ONE attempt per ``complete()`` call and never raises for HTTP or
transport failures: every attempt becomes a ``CallOutcome`` whose ``kind`` says what happened.
Retries, concurrency and rate limits live in ``retry``, ``limits`` and ``collect``.

Lifecycle: a provider owns an ``aiohttp.ClientSession`` bound to the running event loop, created
on first use. Use it inside one loop (``async with provider_build(endpoint) as provider: ...``) and
close it there; create a new provider for every ``asyncio.run``.

Why aiohttp and not httpx: at 64 requests in flight through one client, httpcore's connection pool
rescans every connection for every queued request (quadratic); profiled, the client spent ~6 ms of
CPU per request, capping one endpoint at ~80 responses/s on this machine. aiohttp's client costs
~0.3 ms a request (docs/collection.md has the figures).
"""

from __future__ import annotations

import abc
import email.utils
import json
import logging
import time
from collections.abc import Mapping
from typing import Any, Self

import aiohttp

from providers.secrets import DEFAULT_KEY_POLICY, ApiKey, KeyEnvPolicy, api_key_read
from providers.types import CallOutcome, ChatRequest, EndpointConfig, OutcomeKind, Usage

logger = logging.getLogger("providers")

ERROR_BODY_LIMIT = 4000  # characters of an error body kept for provenance

CONTENT_FILTER_CODES = frozenset(
    {"content_filter", "content_policy_violation", "responsibleaipolicyviolation"}
)
CONTENT_FILTER_PHRASES = (
    "content management policy",
    "content policy",
    "content filtering",
    "content filter",
)


def retry_after_parse(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (OpenAI) or ``Retry-After`` (seconds or HTTP date)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def params_merged(endpoint: EndpointConfig, request: ChatRequest) -> dict[str, Any]:
    """Endpoint defaults overridden by the request's parameters; ``None`` means "not sent"."""
    merged = {**endpoint.default_params, **request.params}
    return {name: value for name, value in merged.items() if value is not None}


def error_message_of(payload: Any) -> tuple[str, str]:
    """(code-or-type, message) from an OpenAI- or Anthropic-style error body, lower-cased code."""
    if isinstance(payload, Mapping):
        error = payload.get("error", payload)
        if isinstance(error, Mapping):
            code = error.get("code") or error.get("type") or ""
            inner = error.get("innererror")
            if isinstance(inner, Mapping) and inner.get("code"):
                code = inner["code"]
            return str(code).lower(), str(error.get("message") or "")
        if isinstance(error, str):
            return "", error
    return "", ""


def looks_like_content_filter(code: str, message: str) -> bool:
    lowered = message.lower()
    return code in CONTENT_FILTER_CODES or any(phrase in lowered for phrase in CONTENT_FILTER_PHRASES)


class ChatProvider(abc.ABC):
    """One endpoint's client. Subclasses implement ``complete``; see the module docstring."""

    def __init__(
        self,
        endpoint: EndpointConfig,
        *,
        environ: Mapping[str, str] | None = None,
        key_policy: KeyEnvPolicy = DEFAULT_KEY_POLICY,
    ) -> None:
        self.endpoint = endpoint
        # Read once, here: a missing or disallowed variable fails before any request, naming it only.
        self._api_key: ApiKey = api_key_read(endpoint.api_key_env, environ, policy=key_policy)

    @abc.abstractmethod
    async def complete(self, request: ChatRequest) -> CallOutcome:
        """Send ``request`` once and describe what happened. Never raises for HTTP/transport errors."""

    async def aclose(self) -> None:  # noqa: B027 - a provider without resources need not override it
        """Release connections."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self.endpoint.name or self.endpoint.model!r})"


class HttpChatProvider(ChatProvider):
    """Common HTTP path: build URL, headers and body; post; turn status and body into an outcome."""

    def __init__(
        self,
        endpoint: EndpointConfig,
        *,
        environ: Mapping[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
        key_policy: KeyEnvPolicy = DEFAULT_KEY_POLICY,
    ) -> None:
        super().__init__(endpoint, environ=environ, key_policy=key_policy)
        self._session = session
        self._owns_session = session is None

    # -- what subclasses define ---------------------------------------------------------------
    @abc.abstractmethod
    def url(self) -> str: ...

    @abc.abstractmethod
    def auth_headers(self, key: str) -> dict[str, str]: ...

    @abc.abstractmethod
    def body_build(self, request: ChatRequest) -> tuple[dict[str, Any], dict[str, Any]]:
        """(JSON body, extra provenance such as parameters the API does not take)."""

    @abc.abstractmethod
    def success_parse(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """CallOutcome fields (kind, text, finish_reason, model, usage) from a 200 reply."""

    @abc.abstractmethod
    def error_classify(self, status: int, payload: Any) -> OutcomeKind: ...

    # -- shared machinery ---------------------------------------------------------------------
    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.endpoint.max_concurrency, limit_per_host=0),
                timeout=aiohttp.ClientTimeout(
                    total=self.endpoint.timeout_s, sock_connect=self.endpoint.connect_timeout_s
                ),
                # Never read proxy settings or .netrc: the key must reach only the configured host.
                trust_env=False,
            )
        return self._session

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", **self.endpoint.extra_headers}
        if self._api_key.reveal():
            headers.update(self.auth_headers(self._api_key.reveal()))
        return headers

    async def complete(self, request: ChatRequest) -> CallOutcome:
        body, extra = self.body_build(request)
        sent = {"url": self.url(), "body": body, **extra}
        started_at = time.time()
        started = time.perf_counter()
        fields: dict[str, Any]
        try:
            # Redirects are refused: one could carry the auth header to another host.
            async with self._http().post(
                self.url(), json=body, headers=self._headers(), allow_redirects=False
            ) as response:
                payload_bytes = await response.read()
                fields = self._response_fields(response.status, response.headers, payload_bytes)
        except aiohttp.ConnectionTimeoutError as exc:
            fields = {
                "kind": OutcomeKind.CONNECTION_ERROR,
                "error": f"{type(exc).__name__}: connect timed out",
            }
        except TimeoutError as exc:
            fields = {
                "kind": OutcomeKind.TIMEOUT,
                "error": f"{type(exc).__name__} after {self.endpoint.timeout_s:g}s",
            }
        except aiohttp.ClientError as exc:
            fields = {
                "kind": OutcomeKind.CONNECTION_ERROR,
                "error": self._api_key.scrub(f"{type(exc).__name__}: {exc}")[:500],
            }
        latency_ms = (time.perf_counter() - started) * 1000
        # Scrubbed here, after decoding, whatever path built the fields (escaped echoes included).
        fields = self._api_key.scrub_outcome_fields(fields)
        outcome = CallOutcome(request=sent, latency_ms=latency_ms, started_at=started_at, **fields)
        logger.debug(
            "endpoint=%s model=%s outcome=%s status=%s latency_ms=%.0f",
            self.endpoint.name or self.endpoint.base_url,
            self.endpoint.model,
            outcome.kind,
            outcome.http_status,
            latency_ms,
        )
        return outcome

    def _response_fields(self, status: int, headers: Mapping[str, str], content: bytes) -> dict[str, Any]:
        # Decode first, then scrub the decoded values: a key echoed as "\u0073\u006b..." is only
        # the key after JSON decoding. The raw text is scrubbed on its own (escapes included).
        raw_text = content.decode("utf-8", errors="replace")
        try:
            payload: Any = self._api_key.scrub_json(json.loads(raw_text)) if raw_text else None
        except (ValueError, RecursionError):
            payload = None
        text = self._api_key.scrub(raw_text)
        if status == 200:
            if not isinstance(payload, Mapping):
                return {
                    "kind": OutcomeKind.SERVER_ERROR,
                    "http_status": status,
                    "error": "reply is not a JSON object",
                    "error_body": text[:ERROR_BODY_LIMIT],
                }
            return {"http_status": status, "raw": payload, **self.success_parse(payload)}
        code, message = error_message_of(payload)
        return {
            "kind": self.error_classify(status, payload),
            "http_status": status,
            "raw": payload if isinstance(payload, Mapping) else None,
            "error": f"HTTP {status}"
            + (f" {code}" if code else "")
            + (f": {message[:300]}" if message else ""),
            "error_body": text[:ERROR_BODY_LIMIT],
            "retry_after_s": retry_after_parse(headers),
        }

    async def aclose(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None


def usage_of(payload: Mapping[str, Any], input_name: str, output_name: str) -> Usage:
    usage = payload.get("usage")
    if not isinstance(usage, Mapping):
        return Usage()
    return Usage(input_tokens=int(usage.get(input_name) or 0), output_tokens=int(usage.get(output_name) or 0))
