"""Writes of the judging app: every service takes the actor and checks ``accounts.policy``."""

from judging.services.imports import external_labels_import
from judging.services.judges import judge_create, judge_template_update, template_version_create
from judging.services.planning import audit_campaign_open, audit_plan_for_run
from judging.services.runs import (
    judge_run_cancel,
    judge_run_create,
    judge_run_pause,
    judge_run_resume,
    judge_run_retry_failed,
    judge_run_start,
    judge_supervise_locally,
)
from judging.services.trust import (
    disagreements_send_to_adjudication,
    judge_trust_grant,
    judge_trust_revoke,
    threshold_set,
)

__all__ = [
    "audit_campaign_open",
    "audit_plan_for_run",
    "disagreements_send_to_adjudication",
    "external_labels_import",
    "judge_create",
    "judge_run_cancel",
    "judge_run_create",
    "judge_run_pause",
    "judge_run_resume",
    "judge_run_retry_failed",
    "judge_run_start",
    "judge_supervise_locally",
    "judge_template_update",
    "judge_trust_grant",
    "judge_trust_revoke",
    "template_version_create",
    "threshold_set",
]
