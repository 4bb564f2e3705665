"""LLM judges: immutable template versions, judge configurations, judge runs with one row per
(run, response, sample), imported external judge labels, audit thresholds and trust grants.

Exactly once is a database property, as for collection runs: the unique constraint on
(run, response, sample_index) holds the whole plan from creation, and a lease token means only
the holder of a claim may fill a row in.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from annotations.models import Campaign, Rubric
from evaluations.models import CollectionRun, Endpoint, ModelResponse, RunStatus
from judging.parsers import PARSERS

PARSER_CHOICES = [(name, info.label) for name, info in PARSERS.items()]


class JudgeTemplate(models.Model):
    """One version of a judge prompt. Never edited: a change is a new version (a new row)."""

    slug = models.SlugField(max_length=60)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    system_prompt = models.TextField(blank=True)
    prompt = models.TextField(blank=True)
    parser = models.CharField(max_length=32, choices=PARSER_CHOICES)
    fields = models.JSONField(default=list)  # audit fields the judge answers
    content_hash = models.CharField(max_length=64)
    builtin = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["slug", "version"], name="judge_template_unique_version")
        ]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"


class Judge(models.Model):
    """A judge configuration: an endpoint, a template version, generation parameters and samples."""

    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=160)
    endpoint = models.ForeignKey(Endpoint, on_delete=models.PROTECT, related_name="judges")
    template = models.ForeignKey(JudgeTemplate, on_delete=models.PROTECT, related_name="judges")
    temperature = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(2)]
    )
    seed = models.BigIntegerField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    samples = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(15)]
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def parameters(self) -> dict[str, object]:
        return {
            k: v
            for k, v in (
                ("temperature", self.temperature),
                ("seed", self.seed),
                ("max_tokens", self.max_tokens),
            )
            if v is not None
        }


class JudgeRun(models.Model):
    judge = models.ForeignKey(Judge, on_delete=models.PROTECT, related_name="runs")
    name = models.CharField(max_length=200)
    collection_run = models.ForeignKey(
        CollectionRun, null=True, blank=True, on_delete=models.PROTECT, related_name="judge_runs"
    )
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.PROTECT, related_name="judge_runs"
    )
    status = models.CharField(
        max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    # The judge as it was when the run was made: template version and hash, endpoint, parameters.
    template = models.ForeignKey(JudgeTemplate, on_delete=models.PROTECT, related_name="+")
    config = models.JSONField(default=dict)
    samples = models.PositiveSmallIntegerField(default=1)
    concurrency = models.PositiveIntegerField(default=64, validators=[MinValueValidator(1)])
    max_attempts = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1)])
    lease_seconds = models.PositiveIntegerField(default=300, validators=[MinValueValidator(1)])
    skipped_responses = models.PositiveIntegerField(default=0)  # no text to judge (blocked, filtered, error)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(collection_run__isnull=False, campaign__isnull=True)
                | Q(collection_run__isnull=True, campaign__isnull=False),
                name="judge_run_over_run_xor_campaign",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status in (RunStatus.QUEUED, RunStatus.RUNNING)


class JudgeItemState(models.TextChoices):
    PENDING = "pending", "Pending"
    LEASED = "leased", "In flight"
    FINISHED = "finished", "Finished"


class JudgeOutcome(models.TextChoices):
    NONE = "", "Not yet"
    PARSED = "parsed", "Parsed"
    PARSE_FAILURE = "parse_failure", "Parse failure"
    ERROR = "error", "Error (attempts exhausted)"


class JudgeItem(models.Model):
    """One (judge run, response, sample) and everything needed to trace the verdict to the wire."""

    run = models.ForeignKey(JudgeRun, on_delete=models.CASCADE, related_name="items")
    response = models.ForeignKey(ModelResponse, on_delete=models.PROTECT, related_name="judge_items")
    sample_index = models.PositiveSmallIntegerField(default=0)
    state = models.CharField(max_length=10, choices=JudgeItemState.choices, default=JudgeItemState.PENDING)
    outcome = models.CharField(max_length=16, choices=JudgeOutcome.choices, blank=True, default="")
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    request = models.JSONField(default=dict, blank=True)  # exact body sent: messages and parameters
    raw_output = models.TextField(blank=True)
    parsed = models.JSONField(null=True, blank=True)  # audit field -> value
    extra = models.JSONField(null=True, blank=True)  # parser extras: StrongREJECT score, guard codes
    parse_error = models.TextField(blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    error_reason = models.TextField(blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "response", "sample_index"], name="judge_item_exactly_once"
            ),
            models.CheckConstraint(
                condition=Q(state="finished", outcome__gt="") | (~Q(state="finished") & Q(outcome="")),
                name="judge_item_outcome_iff_finished",
            ),
            models.CheckConstraint(
                condition=~Q(outcome="parsed") | Q(parsed__isnull=False), name="judge_item_parsed_has_values"
            ),
        ]
        indexes = [models.Index(fields=["run", "state"], name="judge_item_run_state")]

    def __str__(self) -> str:
        return f"judge run {self.run_id} response {self.response_id} #{self.sample_index}"


class ExternalLabelImport(models.Model):
    """A file of labels from a judge run outside the platform; imported whole or not at all."""

    judge_name = models.CharField(max_length=120)
    file_name = models.CharField(max_length=255)
    file_hash = models.CharField(max_length=64, unique=True)
    rows = models.PositiveIntegerField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.judge_name} ({self.file_name})"


class ExternalJudgeLabel(models.Model):
    batch = models.ForeignKey(ExternalLabelImport, on_delete=models.CASCADE, related_name="labels")
    judge_name = models.CharField(max_length=120)
    response = models.ForeignKey(ModelResponse, on_delete=models.PROTECT, related_name="+")
    field = models.CharField(max_length=40)
    value = models.JSONField(null=True)  # None: the judge's output did not parse (a parse failure)
    raw_output = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["judge_name", "response", "field"], name="external_label_once_per_judge"
            )
        ]

    def __str__(self) -> str:
        return f"{self.judge_name}: {self.field} of response {self.response_id}"


class TrustThreshold(models.Model):
    """What an audit must show before a judge is trusted for a field. One live row per field."""

    field = models.CharField(max_length=40, unique=True)
    min_kappa = models.FloatField(validators=[MinValueValidator(-1), MaxValueValidator(1)])
    max_abs_bias = models.FloatField(validators=[MinValueValidator(0), MaxValueValidator(1)])
    recall_class = models.JSONField(null=True, blank=True)  # a value of the field, e.g. true
    min_recall = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(1)]
    )
    min_items = models.PositiveIntegerField(default=30, validators=[MinValueValidator(1)])
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    set_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.field}: kappa >= {self.min_kappa:g}, |bias| <= {self.max_abs_bias:g}"


class JudgeTrust(models.Model):
    """A judge trusted for one field on what its audit covered: a judge run on the platform (its
    template version), or an imported judge (the import files audited, nothing imported later),
    and in either case only for responses of the audit sample's collection runs and categories.
    Void once the judge's template or the rubric has a newer version, or once revoked
    (``trust_list_live`` computes it in SQL)."""

    judge = models.ForeignKey(Judge, null=True, blank=True, on_delete=models.PROTECT, related_name="trusts")
    external_judge = models.CharField(max_length=120, blank=True)  # an imported judge's name
    imports = models.ManyToManyField(ExternalLabelImport, blank=True, related_name="+")  # the files audited
    field = models.CharField(max_length=40)
    template = models.ForeignKey(
        JudgeTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    template_hash = models.CharField(max_length=64, blank=True)
    rubric = models.ForeignKey(Rubric, on_delete=models.PROTECT, related_name="+")
    judge_run = models.ForeignKey(JudgeRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    audit_campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="+")
    gold_source = models.CharField(max_length=16)  # "gold" or "majority"
    categories = models.JSONField(default=list)  # category slugs of the audited items
    run_ids = models.JSONField(default=list)  # collection runs of the audited items
    n_items = models.PositiveIntegerField()
    kappa = models.FloatField()
    max_abs_bias = models.FloatField()
    recall = models.FloatField(null=True, blank=True)
    thresholds = models.JSONField(default=dict)
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    granted_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-granted_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    judge__isnull=False, judge_run__isnull=False, template__isnull=False, external_judge=""
                )
                | Q(judge__isnull=True, judge_run__isnull=True, template__isnull=True, external_judge__gt=""),
                name="judge_trust_platform_xor_imported",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.judge_name} trusted for {self.field}"

    @property
    def judge_name(self) -> str:
        return self.judge.name if self.judge is not None else f"{self.external_judge} (imported)"

    @property
    def scope_description(self) -> str:
        """What the trust covers, in words: the collection runs and categories of the audit sample
        (``judging.selectors.TrustScope`` is the rule itself)."""
        runs = ", ".join(str(run_id) for run_id in sorted(self.run_ids)) or "none"
        categories = ", ".join(sorted(self.categories)) or "none"
        return (
            f"collection {'runs' if len(self.run_ids) > 1 else 'run'} {runs}, "
            f"{'categories' if len(self.categories) > 1 else 'category'} {categories}"
        )

    @property
    def statement(self) -> str:
        if self.template is not None:
            what = f"template {self.template.slug} v{self.template.version}"
        else:
            what = "imported labels"
        return (
            f"judge {self.judge_name}, {what}, audited on {self.n_items} items in "
            f"{self.scope_description}, κ = {self.kappa:.2f}"
        )
