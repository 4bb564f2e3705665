"""Collection runs: which queries go to which targets, and one response row per item.

Exactly once is a database property here, not a worker property: the unique constraint on
(run, query, target, sample_index) means a redelivered task, a second worker or a resumed run can
only ever fill in an existing row, and a lease token means only the holder of a claim may fill it.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from evaluations.models.registry import Endpoint, Pipeline
from querybank.models import Query


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class CollectionRun(models.Model):
    name = models.CharField(max_length=200)
    status = models.CharField(
        max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    # What was asked for, kept to explain the run; the items themselves are the exact selection.
    selection = models.JSONField(default=dict, blank=True)
    samples = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    # Generation parameters snapshotted at creation: temperature, top_p, max_tokens, seed, system_prompt.
    parameters = models.JSONField(default=dict, blank=True)
    concurrency = models.PositiveIntegerField(default=64, validators=[MinValueValidator(1)])
    max_attempts = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1)])
    lease_seconds = models.PositiveIntegerField(default=300, validators=[MinValueValidator(1)])
    # How many collector tasks execute the run at once (each on whichever worker takes it);
    # empty means the COLLECTION_WORKERS_PER_RUN setting.
    workers = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(64)]
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set by every worker batch: a running run whose heartbeat is older than its lease has lost
    # its workers (killed, or its task message lost with Redis), and the watchdog restarts it.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The last time the run went (back) to running: throughput and ETA count from here, so time
    # spent paused does not dilute them.
    resumed_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status in (RunStatus.QUEUED, RunStatus.RUNNING)


class CollectorState(models.TextChoices):
    DISPATCHED = "dispatched", "Dispatched"
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"


class Collector(models.Model):
    """One collector task of a run: created when the task is dispatched (the record that the
    watchdog did dispatch it), beating while it runs. Times come from the database clock, so the
    skew of a worker's host clock cannot make a live collector look dead or a dead one alive."""

    id = models.UUIDField(primary_key=True)
    run = models.ForeignKey(CollectionRun, on_delete=models.CASCADE, related_name="collectors")
    state = models.CharField(max_length=12, choices=CollectorState.choices, default=CollectorState.DISPATCHED)
    hostname = models.CharField(max_length=200, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    dispatched_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    requests_in_flight = models.PositiveIntegerField(default=0)  # model calls open at the last beat
    written = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["dispatched_at"]
        indexes = [models.Index(fields=["run", "state"], name="collector_run_state")]

    def __str__(self) -> str:
        return f"collector {self.id} of run {self.run_id}"


class RunTarget(models.Model):
    """An endpoint or a pipeline in a run, with its configuration as it was when the run began."""

    run = models.ForeignKey(CollectionRun, on_delete=models.CASCADE, related_name="targets")
    endpoint = models.ForeignKey(Endpoint, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    pipeline = models.ForeignKey(Pipeline, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    label = models.CharField(max_length=200)
    config = models.JSONField(default=dict)  # endpoints and guards as snapshotted (no secrets)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(endpoint__isnull=False, pipeline__isnull=True)
                | Q(endpoint__isnull=True, pipeline__isnull=False),
                name="run_target_endpoint_xor_pipeline",
            ),
            models.UniqueConstraint(fields=["run", "endpoint"], name="run_target_unique_endpoint"),
            models.UniqueConstraint(fields=["run", "pipeline"], name="run_target_unique_pipeline"),
        ]

    def __str__(self) -> str:
        return self.label


class ResponseState(models.TextChoices):
    PENDING = "pending", "Pending"
    LEASED = "leased", "In flight"
    FINISHED = "finished", "Finished"


class ResponseOutcome(models.TextChoices):
    NONE = "", "Not yet"
    COLLECTED = "collected", "Collected"
    EMPTY = "empty", "Empty reply"
    CONTENT_FILTER = "content_filter", "Provider content filter"
    INPUT_BLOCKED = "input_blocked", "Blocked by input guard"
    OUTPUT_BLOCKED = "output_blocked", "Blocked by output guard"
    ERROR = "error", "Error (attempts exhausted)"


class ModelResponse(models.Model):
    """One (run, query, target, sample) item and everything needed to trace it back to the wire."""

    run = models.ForeignKey(CollectionRun, on_delete=models.CASCADE, related_name="responses")
    query = models.ForeignKey(Query, on_delete=models.PROTECT, related_name="responses")
    target = models.ForeignKey(RunTarget, on_delete=models.CASCADE, related_name="responses")
    sample_index = models.PositiveSmallIntegerField(default=0)

    state = models.CharField(max_length=10, choices=ResponseState.choices, default=ResponseState.PENDING)
    outcome = models.CharField(max_length=16, choices=ResponseOutcome.choices, blank=True, default="")
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    # Provenance: the exact request sent (messages and parameters, never a key), and the reply.
    request = models.JSONField(default=dict, blank=True)
    resolved_model = models.CharField(max_length=200, blank=True)
    text = models.TextField(blank=True)
    finish_reason = models.CharField(max_length=40, blank=True)
    raw_reply = models.JSONField(null=True, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)  # one entry per failed attempt: kind, status, body
    error_reason = models.TextField(blank=True)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    input_guard = models.JSONField(null=True, blank=True)  # {blocked, categories, raw, model, ...}
    output_guard = models.JSONField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "query", "target", "sample_index"], name="response_exactly_once"
            ),
            models.CheckConstraint(
                condition=Q(state="finished", outcome__gt="") | (~Q(state="finished") & Q(outcome="")),
                name="response_outcome_iff_finished",
            ),
        ]
        indexes = [
            models.Index(fields=["run", "state"], name="response_run_state"),
            models.Index(fields=["run", "outcome"], name="response_run_outcome"),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} query {self.query_id} target {self.target_id} #{self.sample_index}"
