"""``manage.py mock_model_server``: serve the mock model API on loopback (see mockmodel)."""

import asyncio
import contextlib
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from mockmodel import arguments_add, config_from_options, serve


class Command(BaseCommand):
    help = (
        "Serve a mock OpenAI chat-completions / Anthropic Messages API with scripted behaviours, "
        "guard models and injected faults, for offline runs, tests and benchmarks."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        arguments_add(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config = config_from_options(options)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if config.host not in {"127.0.0.1", "localhost", "::1"}:
            self.stderr.write(
                self.style.WARNING(f"binding {config.host}: the mock is meant for loopback only")
            )

        def announce(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(config, announce=announce))
