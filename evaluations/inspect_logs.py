"""Reading an Inspect AI evaluation log (``.eval`` or ``.json``) into plain rows: pure Python, no
Django. Inspect is an optional dependency, imported only here and only when a log is read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class InspectUnavailableError(RuntimeError):
    """``inspect_ai`` is not installed."""


@dataclass(frozen=True)
class InspectSample:
    key: str  # "<sample id>#<epoch>"
    sample_id: str
    epoch: int
    prompt: str
    target: str
    model: str
    text: str
    stop_reason: str
    input_tokens: int
    output_tokens: int
    scores: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class InspectRun:
    task: str
    task_version: Any
    run_id: str
    eval_id: str
    created: str
    status: str
    model: str
    model_base_url: str
    generate_config: dict[str, Any]
    scorers: list[str]
    dataset: str
    inspect_version: str
    samples: list[InspectSample]


def _text(content: Any) -> str:
    """A message's or an input's text: a string, or the text parts of a content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            inner = getattr(part, "text", None) or getattr(part, "content", None)
            parts.append(_text(inner) if inner is not None else "")
        return "\n".join(p for p in parts if p)
    return "" if content is None else str(content)


def _plain(value: Any) -> Any:
    """A JSON-storable copy of a score value, answer or metadata."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "model_dump"):
        return _plain(value.model_dump(mode="json"))
    return str(value)


def read_inspect_log(path: str) -> InspectRun:
    """The log at ``path`` as an ``InspectRun``. Raises ``InspectUnavailableError`` without Inspect,
    ``ValueError`` for a file Inspect cannot read or a log without samples."""
    try:
        from inspect_ai.log import read_eval_log
    except ImportError as exc:  # an optional dependency
        raise InspectUnavailableError(
            "Reading Inspect logs needs the inspect-ai package: pip install inspect-ai"
        ) from exc
    try:
        log = read_eval_log(path)
    except Exception as exc:  # Inspect raises its own and pydantic's errors for a bad file
        raise ValueError(f"{path}: not an Inspect evaluation log ({exc})") from exc
    if not log.samples:
        raise ValueError(f"{path}: the log holds no samples (status {log.status})")
    spec = log.eval
    samples = []
    for sample in log.samples:
        if isinstance(sample.input, str):
            prompt = sample.input
        else:  # a list of chat messages: the user's turns are the prompt
            prompt = "\n".join(_text(m.content) for m in sample.input if getattr(m, "role", "") == "user")
        output = sample.output
        usage = output.usage if output is not None else None
        choice = output.choices[0] if output is not None and output.choices else None
        samples.append(
            InspectSample(
                key=f"{sample.id}#{sample.epoch}",
                sample_id=str(sample.id),
                epoch=int(sample.epoch),
                prompt=prompt,
                target=_text(sample.target)
                if not isinstance(sample.target, list)
                else "\n".join(sample.target),
                model=(output.model if output is not None and output.model else spec.model),
                text=_text(choice.message.content) if choice is not None else "",
                stop_reason=str(choice.stop_reason) if choice is not None else "",
                input_tokens=int(usage.input_tokens) if usage is not None else 0,
                output_tokens=int(usage.output_tokens) if usage is not None else 0,
                scores={
                    name: {
                        "value": _plain(score.value),
                        "answer": _plain(score.answer),
                        "explanation": _plain(score.explanation),
                    }
                    for name, score in (sample.scores or {}).items()
                },
                metadata=_plain(sample.metadata or {}),
                error=str(sample.error.message) if sample.error is not None else "",
            )
        )
    return InspectRun(
        task=spec.task,
        task_version=_plain(spec.task_version),
        run_id=spec.run_id,
        eval_id=getattr(spec, "eval_id", "") or "",
        created=str(spec.created),
        status=str(log.status),
        model=spec.model,
        model_base_url=spec.model_base_url or "",
        generate_config=_plain(log.plan.config.model_dump(exclude_none=True)) if log.plan else {},
        scorers=[s.name for s in (spec.scorers or [])],
        dataset=(spec.dataset.name or "") if spec.dataset else "",
        inspect_version=str(getattr(spec.packages, "get", lambda *_: "")("inspect_ai", "")),
        samples=samples,
    )
