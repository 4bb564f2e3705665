"""An Inspect AI log, written by Inspect's own classes, imports into a run whose rows and provenance
match the log (``manage.py import_inspect_log``)."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.roles import Role
from audit.actions import AuditAction
from audit.models import AuditEvent
from evaluations.models import CollectionRun, ModelResponse
from querybank.models import Query
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

inspect_log = pytest.importorskip("inspect_ai.log")


def _log() -> object:
    from inspect_ai.log import EvalConfig, EvalDataset, EvalLog, EvalPlan, EvalSample, EvalSpec
    from inspect_ai.model import (
        ChatMessageAssistant,
        ChatMessageUser,
        GenerateConfig,
        ModelOutput,
        ModelUsage,
    )
    from inspect_ai.scorer import Score

    samples = []
    for n, (reply, grade) in enumerate(
        [("Please ask a pharmacist.", "C"), ("I cannot help with that.", "I")]
    ):
        for epoch in (1, 2):
            output = ModelOutput.from_content(model="mockllm/model", content=f"{reply} (epoch {epoch})")
            output.usage = ModelUsage(
                input_tokens=10 + n, output_tokens=4 + epoch, total_tokens=14 + n + epoch
            )
            question = f"Synthetic question {n} about medicine safety?"
            samples.append(
                EvalSample(
                    id=f"s{n}",
                    epoch=epoch,
                    input=question,
                    target="answer",
                    output=output,
                    messages=[ChatMessageUser(content=question), ChatMessageAssistant(content=reply)],
                    metadata={"topic": "synthetic"},
                    scores={"model_graded_qa": Score(value=grade, explanation=f"graded {grade}")},
                )
            )
    spec = EvalSpec(
        created="2026-11-30T10:00:00+00:00",
        task="refusal_probe",
        dataset=EvalDataset(name="synthetic"),
        model="mockllm/model",
        config=EvalConfig(),
        run_id="run-123",
    )
    return EvalLog(
        eval=spec,
        plan=EvalPlan(config=GenerateConfig(temperature=0.0, max_tokens=64)),
        status="success",
        samples=samples,
    )


@pytest.mark.parametrize("suffix", ["eval", "json"])
def test_an_inspect_log_becomes_a_run_with_its_provenance(tmp_path: Path, suffix: str) -> None:
    from inspect_ai.log import write_eval_log

    path = tmp_path / f"probe.{suffix}"
    write_eval_log(_log(), str(path))
    maintainer = UserFactory(role=Role.MAINTAINER)
    out = StringIO()
    call_command("import_inspect_log", str(path), "--actor", maintainer.email, stdout=out)
    assert "4 responses, 2 new prompts" in out.getvalue()
    run = CollectionRun.objects.get()
    assert run.status == "completed"
    assert run.parameters == {"generate_config": {"max_tokens": 64, "temperature": 0.0}}
    assert run.selection["task"] == "refusal_probe"
    assert run.selection["inspect_run_id"] == "run-123"
    assert run.selection["model"] == "mockllm/model"
    assert run.selection["imported_from"] == [path.name]
    rows = {
        (r.request["inspect"]["sample_id"], r.request["inspect"]["epoch"]): r
        for r in ModelResponse.objects.filter(run=run).select_related("query", "target")
    }
    assert sorted(rows) == [("s0", 1), ("s0", 2), ("s1", 1), ("s1", 2)]
    second = rows[("s1", 2)]
    assert second.text == "I cannot help with that. (epoch 2)"
    assert (second.input_tokens, second.output_tokens, second.finish_reason) == (11, 6, "stop")
    assert second.raw_reply["inspect"]["scores"]["model_graded_qa"] == {
        "value": "I",
        "answer": None,
        "explanation": "graded I",
    }
    assert second.query.text == "Synthetic question 1 about medicine safety?"
    assert second.query.source == "inspect-refusal_probe"
    assert second.target.label == "mockllm/model"
    assert Query.objects.filter(source="inspect-refusal_probe").count() == 2
    assert AuditEvent.objects.filter(action=AuditAction.INSPECT_LOG_IMPORT).count() == 1


def test_a_file_that_is_not_a_log_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{}")
    maintainer = UserFactory(role=Role.MAINTAINER)
    with pytest.raises(CommandError, match="not an Inspect evaluation log"):
        call_command("import_inspect_log", str(path), "--actor", maintainer.email)
    assert not CollectionRun.objects.exists()
