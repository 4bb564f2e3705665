"""The model registry: endpoints we call, and guardrail pipelines built from them.

An endpoint stores the NAME of the environment variable that holds its API key, never the key.
"""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models


class EndpointKind(models.TextChoices):
    OPENAI_CHAT = "openai_chat", "OpenAI-compatible chat completions"
    ANTHROPIC_MESSAGES = "anthropic_messages", "Anthropic Messages"


class EndpointFamily(models.TextChoices):
    GENERAL = "general", "General-purpose"
    MEDICAL = "medical", "Medical-purpose"
    CLOSED = "closed", "Closed-source"
    SFT = "sft", "Downstream SFT"
    GUARDRAIL = "guardrail", "Guardrail model"


class GuardFormat(models.TextChoices):
    NONE = "", "Not a guard"
    LLAMA_GUARD = "llama_guard", "Llama Guard (safe / unsafe + S-codes)"
    YES_NO = "yes_no", "Yes/No (ShieldGemma style)"


env_var_name = RegexValidator(
    r"^[A-Z_][A-Z0-9_]*$", "An environment variable name: capitals, digits and underscores."
)


class Endpoint(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=160)
    kind = models.CharField(max_length=32, choices=EndpointKind.choices, default=EndpointKind.OPENAI_CHAT)
    base_url = models.URLField(max_length=300)
    model_name = models.CharField(max_length=200)
    family = models.CharField(max_length=16, choices=EndpointFamily.choices, default=EndpointFamily.GENERAL)
    guard_format = models.CharField(max_length=16, choices=GuardFormat.choices, blank=True, default="")
    base_model = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="fine_tunes",
        help_text="For a fine-tune: the model it was tuned from (paired comparisons).",
    )
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        validators=[env_var_name],
        help_text="Name of the environment variable holding the API key (the key is never stored).",
    )
    default_parameters = models.JSONField(default=dict, blank=True)
    max_concurrency = models.PositiveIntegerField(default=16, validators=[MinValueValidator(1)])
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_minute = models.PositiveIntegerField(null=True, blank=True)
    timeout_seconds = models.FloatField(default=60.0, validators=[MinValueValidator(0.1)])
    price_input_per_million = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal(0))
    price_output_per_million = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal(0))
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from evaluations.endpoint_rules import host_problem, key_env_policy

        if self.api_key_env:
            problem = key_env_policy().problem(self.api_key_env)
            if problem:
                raise ValidationError({"api_key_env": problem[0].upper() + problem[1:] + "."})
        if self.base_url:
            problem = host_problem(self.base_url)
            if problem:
                raise ValidationError({"base_url": problem[0].upper() + problem[1:] + "."})
        if self.family == EndpointFamily.GUARDRAIL and not self.guard_format:
            raise ValidationError({"guard_format": "A guardrail endpoint needs the format of its verdicts."})
        if self.guard_format and self.family != EndpointFamily.GUARDRAIL:
            raise ValidationError({"family": "Only guardrail endpoints have a guard format."})


class Pipeline(models.Model):
    """Optional input guard → model → optional output guard."""

    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=160)
    input_guard = models.ForeignKey(
        Endpoint,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"family": EndpointFamily.GUARDRAIL},
    )
    model = models.ForeignKey(Endpoint, on_delete=models.PROTECT, related_name="pipelines")
    output_guard = models.ForeignKey(
        Endpoint,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"family": EndpointFamily.GUARDRAIL},
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        for field in ("input_guard", "output_guard"):
            guard = getattr(self, field)
            if guard is not None and guard.family != EndpointFamily.GUARDRAIL:
                errors[field] = "Must be a guardrail endpoint."
        if self.model_id and self.model.family == EndpointFamily.GUARDRAIL:
            errors["model"] = "The model of a pipeline cannot be a guardrail endpoint."
        if not self.input_guard_id and not self.output_guard_id:
            errors["input_guard"] = "A pipeline needs an input guard, an output guard or both."
        if errors:
            raise ValidationError(errors)
