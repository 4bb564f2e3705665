"""A mock model server for offline collection runs, tests and benchmarks (aiohttp, no Django).

Speaks the OpenAI chat-completions API (``POST /v1/chat/completions``, ``GET /v1/models``) and
the Anthropic Messages API (``POST /v1/messages``) with deterministic scripted behaviours, guard
models in Llama Guard or Yes/No format, and injected faults (429 with Retry-After, 500, hangs,
content filters, empty replies). ``behaviours`` documents how answers and faults are chosen,
``app`` the routes, ``runner`` how to start it: ``python manage.py mock_model_server --port P``,
``python -m mockmodel --port P``, or in-process with ``MockServerThread`` /
``MockServerProcess``.
"""

from mockmodel.app import MockServerConfig, app_build
from mockmodel.behaviours import Behaviour, Fault, FaultRates
from mockmodel.runner import (
    MockServerProcess,
    MockServerThread,
    arguments_add,
    config_from_options,
    serve,
)

__all__ = [
    "Behaviour",
    "Fault",
    "FaultRates",
    "MockServerConfig",
    "MockServerProcess",
    "MockServerThread",
    "app_build",
    "arguments_add",
    "config_from_options",
    "serve",
]
