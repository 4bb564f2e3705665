"""Running the mock model server: command-line options, the blocking ``serve``, and two
in-process handles for tests and benchmarks.

- ``MockServerThread(config)``: the server on its own event loop in a background thread. Cheap to
  start; shares the GIL with the caller, so use it for tests, not for throughput figures.
- ``MockServerProcess(config)``: the server in a child Python process (no Django), as in
  production-like benchmarks where the mock must not steal the client's interpreter.

Both bind port 0 unless told otherwise and report the port the OS gave, so parallel test runs
never collide; both are context managers exposing ``base_url`` (``http://127.0.0.1:PORT``),
``openai_base_url`` (``.../v1``), ``stats()``, ``reset()``, ``script_set()`` and ``stop()``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any, Self

from aiohttp import web

from mockmodel.app import MockServerConfig, app_build
from mockmodel.behaviours import FaultRates

READY_PREFIX = "mock model server listening on "
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def arguments_add(parser: argparse.ArgumentParser) -> None:
    """The server's options; shared by ``python -m mockmodel`` and the Django command."""
    parser.add_argument("--host", default="127.0.0.1", help="bind address (loopback by default)")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--latency-jitter-ms", type=float, default=0.0, help="extra random latency, 0..N ms")
    parser.add_argument("--rate-429", type=float, default=0.0)
    parser.add_argument("--rate-500", type=float, default=0.0)
    parser.add_argument("--rate-timeout", type=float, default=0.0, help="share of requests that hang")
    parser.add_argument("--rate-content-filter", type=float, default=0.0)
    parser.add_argument("--rate-empty", type=float, default=0.0)
    parser.add_argument(
        "--content-filter-style",
        choices=["http", "finish", "both"],
        default="both",
        help="HTTP 400 content policy error, finish_reason content_filter, or half each",
    )
    parser.add_argument("--retry-after", type=float, default=1.0, help="seconds sent with 429s")
    parser.add_argument("--hang-seconds", type=float, default=600.0, help="how long a timeout hangs")
    parser.add_argument("--guard", action="store_true", help="every model answers as Llama Guard")
    parser.add_argument("--guard-unsafe-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--models", default=",".join(MockServerConfig().models), help="names for GET /v1/models"
    )
    parser.add_argument(
        "--judge-lenient-model", default="mock-medical-model", help="model a 'judge-lenient' judge favours"
    )
    parser.add_argument("--script-json", default="", help='{"prompt": ["429", "ok"], ...}')
    parser.add_argument(
        "--require-api-key-env",
        default="",
        help="name of an environment variable holding the key requests must carry",
    )


def config_from_options(options: argparse.Namespace | dict[str, Any]) -> MockServerConfig:
    values = vars(options) if isinstance(options, argparse.Namespace) else options
    key_env = values.get("require_api_key_env") or ""
    return MockServerConfig(
        host=values["host"],
        port=values["port"],
        latency_ms=values["latency_ms"],
        latency_jitter_ms=values["latency_jitter_ms"],
        rates=FaultRates(
            rate_429=values["rate_429"],
            rate_500=values["rate_500"],
            rate_timeout=values["rate_timeout"],
            rate_content_filter=values["rate_content_filter"],
            rate_empty=values["rate_empty"],
            content_filter_style=values["content_filter_style"],
        ),
        retry_after_s=values["retry_after"],
        hang_s=values["hang_seconds"],
        guard=values["guard"],
        guard_unsafe_rate=values["guard_unsafe_rate"],
        seed=values["seed"],
        models=tuple(name for name in values["models"].split(",") if name),
        script=json.loads(values["script_json"]) if values.get("script_json") else {},
        require_api_key=os.environ.get(key_env) if key_env else None,
        judge_lenient_model=values.get("judge_lenient_model") or "mock-medical-model",
    )


async def _site_start(config: MockServerConfig) -> tuple[web.AppRunner, int]:
    # handler_cancellation: a client that gives up on a hanging request frees the handler at once.
    runner = web.AppRunner(
        app_build(config), access_log=None, handler_cancellation=True, shutdown_timeout=1.0
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, backlog=2048, reuse_address=True)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port


async def serve(config: MockServerConfig, *, announce: Any = print) -> None:
    """Serve until SIGINT/SIGTERM. Announces ``READY_PREFIX + url`` once it accepts connections."""
    runner, port = await _site_start(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    announce(f"{READY_PREFIX}http://{config.host}:{port}")
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mockmodel", description=__doc__)
    arguments_add(parser)
    config = config_from_options(parser.parse_args(argv))
    main = serve(config, announce=lambda line: print(line, flush=True))
    try:  # the loop in C where it is installed: the mock's own share of each call's latency falls
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(main)
    else:
        uvloop.run(main)


class _Handle:
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else (b"" if method == "POST" else None)
        request = urllib.request.Request(  # noqa: S310 - our own loopback URL
            self.base_url + path,
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/_mock/stats")

    def reset(self) -> None:
        self._call("POST", "/_mock/reset")

    def script_set(self, script: dict[str, list[str]]) -> None:
        self._call("POST", "/_mock/script", script)

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class MockServerThread(_Handle):
    def __init__(self, config: MockServerConfig | None = None) -> None:
        self.config = config or MockServerConfig()
        self.host = self.config.host
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mock-model-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("mock model server did not start within 15 s")
        if self._error is not None:
            raise RuntimeError("mock model server failed to start") from self._error

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._runner, self.port = self._loop.run_until_complete(_site_start(self.config))
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=15)


class MockServerProcess(_Handle):
    def __init__(self, config: MockServerConfig | None = None, *, python: str = sys.executable) -> None:
        self.config = config or MockServerConfig()
        self.host = self.config.host
        environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"}
        if self.config.require_api_key:
            environment["MOCK_SERVER_REQUIRED_KEY"] = self.config.require_api_key
        self._process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [python, "-m", "mockmodel", *self.config.to_argv()],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=PROJECT_ROOT,
            env=environment,
        )
        self.pid = self._process.pid
        self.port = self._port_read()

    def _port_read(self) -> int:
        # The reader keeps draining the pipe after start-up, so a chatty child never blocks on it.
        self.output: collections.deque[str] = collections.deque(maxlen=200)
        ready = threading.Event()
        url: list[str] = []

        def read() -> None:
            assert self._process.stdout is not None
            for line in self._process.stdout:
                self.output.append(line)
                if not url and line.startswith(READY_PREFIX):
                    url.append(line.strip().removeprefix(READY_PREFIX))
                    ready.set()
            ready.set()

        threading.Thread(target=read, name="mock-model-server-output", daemon=True).start()
        if not ready.wait(timeout=20) or not url:
            self.stop()
            raise RuntimeError("mock model server process did not start: " + "".join(self.output)[-2000:])
        return int(url[0].rsplit(":", 1)[1])

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
