"""Create and steer collection runs from the shell: create, start, pause, resume, cancel,
retry-failed, status and export (streamed JSONL/CSV)."""

import sys
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User
from evaluations import services
from evaluations.exporters import RESPONSE_EXPORT_FORMATS, responses_export_stream
from evaluations.models import CollectionRun, Endpoint, ModelResponse, Pipeline
from evaluations.selectors import run_progress
from querybank.models import Query
from querybank.selectors import query_selection

ACTIONS = {
    "start": services.run_start,
    "pause": services.run_pause,
    "resume": services.run_resume,
    "cancel": services.run_cancel,
    "retry-failed": services.run_retry_failed,
}


class Command(BaseCommand):
    help = "Create, steer and export collection runs."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a run (and start it with --start).")
        create.add_argument("--name", required=True)
        create.add_argument("--actor", required=True, help="E-mail of the maintainer creating the run.")
        create.add_argument("--endpoint", action="append", default=[], help="Endpoint slug (repeatable).")
        create.add_argument("--pipeline", action="append", default=[], help="Pipeline slug (repeatable).")
        create.add_argument("--category", help="Only queries of this category slug.")
        create.add_argument("--source", help="Only queries of this source.")
        create.add_argument("--ids", help="Comma-separated external ids.")
        create.add_argument("--samples", type=int, default=1)
        create.add_argument("--temperature", type=float)
        create.add_argument("--top-p", type=float, dest="top_p")
        create.add_argument("--max-tokens", type=int, dest="max_tokens")
        create.add_argument("--seed", type=int)
        create.add_argument("--system-prompt", dest="system_prompt")
        create.add_argument("--concurrency", type=int, default=64)
        create.add_argument("--max-attempts", type=int, default=5, dest="max_attempts")
        create.add_argument("--start", action="store_true")
        for name in ACTIONS:
            action = sub.add_parser(name)
            action.add_argument("run_id", type=int)
            action.add_argument("--actor", help="E-mail of the maintainer (recorded in the audit trail).")
        status = sub.add_parser("status")
        status.add_argument("run_id", type=int)
        export = sub.add_parser("export")
        export.add_argument("run_id", type=int)
        export.add_argument("--format", choices=sorted(RESPONSE_EXPORT_FORMATS), default="jsonl")
        export.add_argument("--output", help="File to write (standard output by default).")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "create":
                self._create(options)
                return
            run = self._run(options["run_id"])
            if action in ACTIONS:
                ACTIONS[action](run=run, actor=self._actor(options.get("actor")))
                run.refresh_from_db()
                self.stdout.write(f"run {run.pk}: {run.status}")
                if action in ("start", "resume", "retry-failed"):
                    self._wait_if_local(run)
            elif action == "status":
                self._status(run)
            else:
                self._export(run, options["format"], options.get("output"))
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error

    def _run(self, run_id: int) -> CollectionRun:
        run = CollectionRun.objects.filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"No run with id {run_id}.")
        return run

    def _actor(self, email: str | None) -> User | None:
        if not email:
            return None
        user = User.objects.filter(email=email.lower()).first()
        if user is None:
            raise CommandError(f"No user with e-mail {email}.")
        return user

    def _create(self, options: dict[str, Any]) -> None:
        targets: list[Endpoint | Pipeline] = []
        for slug in options["endpoint"]:
            targets.append(Endpoint.objects.filter(slug=slug).first() or self._missing("endpoint", slug))
        for slug in options["pipeline"]:
            targets.append(Pipeline.objects.filter(slug=slug).first() or self._missing("pipeline", slug))
        ids = [part.strip() for part in (options.get("ids") or "").split(",") if part.strip()]
        queries, selection = query_selection(
            queries=Query.objects.all(),
            category=options.get("category"),
            source=options.get("source"),
            external_ids=ids,
        )
        actor = self._actor(options["actor"])
        if actor is None:
            raise CommandError("--actor: name the maintainer creating the run by e-mail.")
        # One transaction: with --start and no broker answering, nothing at all is committed.
        with transaction.atomic():
            run = self._create_run(options, actor, queries, targets, selection)
        self.stdout.write(
            f"run {run.pk}: {run.status}, {ModelResponse.objects.filter(run=run).count()} items"
        )
        if options["start"]:
            self._wait_if_local(run)

    def _create_run(
        self,
        options: dict[str, Any],
        actor: User,
        queries: Any,
        targets: list[Endpoint | Pipeline],
        selection: dict[str, Any],
    ) -> CollectionRun:
        run = services.run_create(
            actor=actor,
            name=options["name"],
            queries=queries,
            targets=targets,
            samples=options["samples"],
            parameters={
                k: options.get(k) for k in ("temperature", "top_p", "max_tokens", "seed", "system_prompt")
            },
            selection=selection,
            concurrency=options["concurrency"],
            max_attempts=options["max_attempts"],
        )
        if options["start"]:
            run = services.run_start(run=run, actor=actor)
        return run

    def _wait_if_local(self, run: CollectionRun) -> None:
        """With no broker the run is collected on a thread of this process, which would die with
        the command: so the command waits for it, and says so."""
        if not settings.COLLECTION_DISPATCH_IN_THREAD:
            return
        self.stdout.write(
            f"No broker (REDIS_URL is not set): collecting run {run.pk} in this process; "
            "waiting for it to finish (Ctrl-C stops here; `resume` goes on later)."
        )
        self.stdout.flush()
        services.collection_threads_wait()
        run.refresh_from_db()
        progress = run_progress(run=run)
        self.stdout.write(f"run {run.pk}: {run.status}, {progress.finished}/{progress.total} finished")

    @staticmethod
    def _missing(kind: str, slug: str) -> Any:
        raise CommandError(f"No {kind} with slug {slug!r}.")

    def _status(self, run: CollectionRun) -> None:
        progress = run_progress(run=run)
        self.stdout.write(f"run {run.pk} {run.name!r}: {run.status}")
        self.stdout.write(f"  {progress.finished}/{progress.total} finished, {progress.in_flight} in flight")
        for outcome, count in progress.by_outcome.items():
            self.stdout.write(f"  {outcome}: {count}")
        self.stdout.write(f"  cost so far: {progress.cost}")

    def _export(self, run: CollectionRun, file_format: str, output: str | None) -> None:
        responses = ModelResponse.objects.filter(run=run)
        chunks = responses_export_stream(responses=responses, file_format=file_format)
        if output:
            with open(output, "w", encoding="utf-8", newline="") as handle:
                for chunk in chunks:
                    handle.write(chunk)
        else:
            for chunk in chunks:
                sys.stdout.write(chunk)
