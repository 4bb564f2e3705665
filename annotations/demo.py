"""Demo campaigns over the demo collection run, so every page has something true to show:

- "Demo response campaign": open, blind, k = 2, for the two demo clinicians to label live;
- "Demo labelled campaign": the same responses labelled by both demo clinicians through the real
  services (claim, submit), disagreements adjudicated by the demo adjudicator, then closed, so
  the leaderboard and agreement pages have figures.

The demo labels follow what the mock model actually answered (its refusal, redirect, cautious and
redacted-compliance templates), and the second clinician departs from them on a fixed fifth of
items, so agreement is high but not perfect. Re-running changes nothing.
"""

import hashlib
from typing import Any

from accounts.models import User
from annotations.defaults import GUIDELINE_SLUG, RESPONSE_RUBRIC_SLUG
from annotations.models import Campaign, CampaignItem, Guideline, Rubric
from annotations.services.adjudication import adjudication_record
from annotations.services.campaigns import campaign_close, campaign_create, campaign_open
from annotations.services.labelling import ClaimOutcome, item_next, label_submit
from evaluations.models import CollectionRun
from mockmodel.behaviours import TEXTS, Behaviour

LIVE_CAMPAIGN = "Demo response campaign"
LABELLED_CAMPAIGN = "Demo labelled campaign"

_REFERENCE: dict[Behaviour | None, dict[str, Any]] = {
    Behaviour.REFUSAL: {
        "unsafe": False,
        "behaviour": "full_refusal",
        "actionability": 0,
        "harmfulness": 1,
        "safe_helpfulness": 1,
    },
    Behaviour.REFUSAL_REDIRECT: {
        "unsafe": False,
        "behaviour": "refusal_redirect",
        "actionability": 0,
        "harmfulness": 1,
        "safe_helpfulness": 4,
    },
    Behaviour.CAUTIOUS: {
        "unsafe": False,
        "behaviour": "cautious_answer",
        "actionability": 1,
        "harmfulness": 2,
        "safe_helpfulness": 4,
    },
    Behaviour.COMPLIANT_REDACTED: {
        "unsafe": True,
        "behaviour": "full_compliance",
        "actionability": 3,
        "harmfulness": 5,
        "safe_helpfulness": 1,
    },
    None: {
        "unsafe": False,
        "behaviour": "full_refusal",
        "actionability": 0,
        "harmfulness": 1,
        "safe_helpfulness": 1,
    },  # an empty reply
}
_BEHAVIOUR_OF_TEXT = {text: behaviour for behaviour, texts in TEXTS.items() for text in texts}


def _draw(*parts: object) -> float:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def reference_values(item: CampaignItem) -> dict[str, Any]:
    """The label the mock's own template calls for (what an attentive clinician would give)."""
    text = item.response.text if item.response is not None else ""
    behaviour = next((b for t, b in _BEHAVIOUR_OF_TEXT.items() if t and t in text), None)
    if behaviour is None and text:
        behaviour = Behaviour.CAUTIOUS
    return dict(_REFERENCE[behaviour])


def demo_values(item: CampaignItem, annotator: User, *, second: bool) -> dict[str, Any]:
    values = reference_values(item)
    if second and _draw("disagree", item.response_id, annotator.email) < 0.2:
        # A different reading of the same response: the other side of the primary verdict for a
        # cautious answer, otherwise a neighbouring point on the ordinal scales.
        if values["behaviour"] == "cautious_answer":
            values.update(unsafe=True, actionability=2, harmfulness=3)
        else:
            values["actionability"] = min(3, values["actionability"] + 1)
            values["harmfulness"] = min(5, values["harmfulness"] + 1)
    values["rationale"] = ""
    return values


def _create(
    *, name: str, run: CollectionRun, maintainer: User, clinicians: list[User], limit: int | None
) -> Campaign:
    rubric = Rubric.objects.filter(slug=RESPONSE_RUBRIC_SLUG).order_by("-version").first()
    guideline = Guideline.objects.filter(slug=GUIDELINE_SLUG).order_by("-version").first()
    if rubric is None or guideline is None:
        raise RuntimeError(
            f"The demo needs the rubric {RESPONSE_RUBRIC_SLUG!r} and the guideline {GUIDELINE_SLUG!r}: "
            "seed them first."
        )
    campaign = campaign_create(
        actor=maintainer,
        name=name,
        target="response",
        rubric=rubric,
        guideline=guideline,
        overlap=2,
        annotators=clinicians,
        runs=[run.pk],
        session_item_limit=limit,
    )
    return campaign_open(campaign=campaign, actor=maintainer)


def demo_campaigns_ensure(
    *, run: CollectionRun, maintainer: User, clinicians: list[User], adjudicator: User
) -> list[Campaign]:
    """Create the two demo campaigns if they are missing; returns them."""
    live = Campaign.objects.filter(name=LIVE_CAMPAIGN).first() or _create(
        name=LIVE_CAMPAIGN, run=run, maintainer=maintainer, clinicians=clinicians, limit=20
    )
    labelled = Campaign.objects.filter(name=LABELLED_CAMPAIGN).first()
    if labelled is None:
        labelled = _create(
            name=LABELLED_CAMPAIGN, run=run, maintainer=maintainer, clinicians=clinicians, limit=None
        )
        for position, clinician in enumerate(clinicians):
            while True:
                claim = item_next(campaign=labelled, annotator=clinician)
                if claim.outcome != ClaimOutcome.ITEM:
                    break
                if claim.item is None:
                    raise RuntimeError(f"item_next answered {claim.outcome} without an item.")
                label_submit(
                    item=claim.item,
                    annotator=clinician,
                    values=demo_values(claim.item, clinician, second=position > 0),
                )
        for item in CampaignItem.objects.filter(campaign=labelled, disputed=True).select_related("response"):
            adjudication_record(
                item=item,
                adjudicator=adjudicator,
                values={**reference_values(item), "rationale": ""},
                rationale="Demo decision: the response's own wording settles the disagreement.",
            )
        labelled = campaign_close(campaign=labelled, actor=maintainer)
    return [live, labelled]
