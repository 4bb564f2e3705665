"""API keys never land in what a collection stores (issue 8, leak 4): a server that echoes the key
escaped (``\\u0073...``), split across fields, base64- or URL-encoded gets it scrubbed from the reply
text, the raw reply, the error and the error body, through both clients, after JSON decoding."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from providers import ChatRequest, EndpointCaller, RetryPolicy, collect_many, provider_build
from providers.secrets import REDACTED_KEY, ApiKey
from providers.types import EndpointConfig

KEY_ENV = "MEDHARM_KEY_TEST_ECHO"
KEY = "sk-echo-7d41c0ffee93ab26e5f8-live"


def _escaped(text: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in text)


def _echo(mode: str, key: str) -> tuple[str, str]:
    """Two JSON string bodies (already encoded) that together echo ``key`` the way ``mode`` says."""
    if mode == "escaped":
        return _escaped(key), "no"
    if mode == "mixed":  # only some characters escaped
        return key[:6] + _escaped(key[6:12]) + key[12:], "no"
    if mode == "split":
        return key[:14], key[14:]
    if mode == "base64":
        return "Basic " + base64.b64encode(f"user:{key}".encode()).decode(), "no"
    if mode == "url":
        return "key=" + urllib.parse.quote(key, safe="").replace("-", "%2D").replace("c", "%63"), "no"
    return key, "no"


MODES = ("literal", "escaped", "mixed", "split", "base64", "url")


class EchoHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length))
        mode, status = body["messages"][0]["content"].split()
        key = self.headers.get("authorization", "").removeprefix("Bearer ")
        first, second = _echo(mode, key)
        if status == "401":
            text = (
                '{"error": {"message": "Incorrect API key provided: '
                + first
                + '", "param": "'
                + second
                + '", "type": "invalid_request_error", "code": "invalid_api_key"}}'
            )
        else:
            text = (
                '{"id": "x", "object": "chat.completion", "model": "echo-'
                + second
                + '", "choices": [{"index": 0, '
                '"message": {"role": "assistant", "content": "You sent ' + first + '"}, '
                '"finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}'
            )
        raw = text.encode()
        self.send_response(int(status))
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _leaks(text: str) -> list[str]:
    """The key, or any 8-character piece of it, in ``text``, in any of the echoed encodings."""
    found = []
    for size in (len(KEY), 8):
        for start in range(len(KEY) - size + 1):
            piece = KEY[start : start + size]
            if piece in text or _escaped(piece).lower() in text.lower():
                found.append(piece)
    if base64.b64encode(f"user:{KEY}".encode()).decode()[8:-4] in text:
        found.append("base64")
    return found


@pytest.mark.parametrize("client", ["aiohttp", "openai_sdk"])
def test_echoed_keys_are_scrubbed_from_everything_stored(
    echo_server: str, client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    endpoint = EndpointConfig(
        kind="openai_chat", base_url=echo_server, model="echo", api_key_env=KEY_ENV, timeout_s=5.0
    )
    prompts = [f"{mode} {status}" for mode in MODES for status in ("200", "401")]
    results = []

    async def run() -> None:
        async with provider_build(endpoint, client=client) as provider:  # type: ignore[arg-type]
            caller = EndpointCaller(provider, policy=RetryPolicy(max_attempts=1, base_delay=0.01))
            await collect_many(
                caller, [ChatRequest.from_prompt(p, item_id=p) for p in prompts], on_result=results.append
            )

    import asyncio

    asyncio.run(run())
    assert {r.item_id for r in results} == set(prompts)
    for result in results:
        outcome = result.outcome
        stored = json.dumps(result.to_dict(), ensure_ascii=False)
        assert _leaks(stored) == [], (result.item_id, stored)
        assert REDACTED_KEY in stored, result.item_id  # the echo was there, and was replaced
        if result.item_id.endswith("200"):
            assert outcome.text.startswith("You sent "), result.item_id
            assert REDACTED_KEY in outcome.text
        else:
            assert outcome.http_status == 401
            assert REDACTED_KEY in (outcome.error_body or "")


def test_scrub_keeps_ordinary_text_and_escapes_unchanged() -> None:
    key = ApiKey(KEY)
    text = 'A reply with 100% safe advice, caf\\u00e9 &amp; "sk-" prefixes, and sk-echo alone.'
    assert key.scrub(text) == text
    assert key.scrub("") == ""
    assert ApiKey("").scrub("anything sk-echo") == "anything sk-echo"


# --- which variables may hold a key (issue 8, leak 5) ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("MEDHARM_KEY_OPENAI", True),
        ("DJANGO_SECRET_KEY", False),
        ("DATABASE_URL", False),
        ("REDIS_URL", False),
        ("OPENAI_API_KEY", False),  # not prefixed, not listed
        ("MEDHARM_KEY_", False),  # the prefix alone names nothing
    ],
)
def test_the_pure_policy_allows_only_prefixed_names(name: str, allowed: bool) -> None:
    from providers import ApiKeyNotAllowedError, api_key_read

    environ = {name: "a-secret-value-1234567890"}
    if allowed:
        assert api_key_read(name, environ).reveal() == "a-secret-value-1234567890"
    else:
        with pytest.raises(ApiKeyNotAllowedError) as refused:
            api_key_read(name, environ)
        assert "a-secret-value" not in str(refused.value)
        assert name in str(refused.value)
