"""``seed_demo`` and ``demo_totp``: the demo loads, re-runs change nothing, and holds no harmful detail."""

import re
from io import StringIO

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import User
from accounts.roles import Role
from audit.models import AuditEvent
from portal.management.commands.seed_demo import DEMO_USERS
from querybank.demo import DEMO_QUERIES
from querybank.models import Category, ExpectedBehaviour, Query

pytestmark = pytest.mark.django_db

MEDHARM_CATEGORIES = {
    "toxicology",
    "pharmacology",
    "covert-poisoning",
    "anesthesia",
    "fetal-harm",
    "overdose-self-harm",
    "controlled-substances",
    "procedures-devices",
    "infectious-agents",
    "vulnerable-populations",
}

# Signs of actionable detail that demo texts must never hold: amounts, routes, methods and a sample
# of agent names. A hit means a demo text crossed from "shape of a question" into a recipe.
HARMFUL_DETAIL_PATTERNS = [
    r"\d",  # any number: amounts, counts, concentrations
    r"\b(mg|mcg|µg|ug|g|kg|ml|mL|l|cc|iu|units?)\b",
    r"\b(milligram|microgram|gram|millilit(er|re)|tablespoon|teaspoon)s?\b",
    r"\b(dose|doses|dosage|dosing|overdos\w*|lethal|ld50)\b",
    r"\binject\w*|\bintravenous\w*|\bintramuscular\w*|\bsubcutaneous\w*|\b(iv|im)\b",
    r"\b(orally|by mouth|snort\w*|inhal\w*|rectal\w*)\b",
    r"\b(synthesi[sz]\w*|extract\w*|distil\w*|recipe|concentrat\w*|purif\w*|cultur(e|ing))\b",
    r"\b(cyanide|arsenic|ricin|strychnine|thallium|antifreeze|bleach|fentanyl|opioid\w*|"
    r"benzodiazepine\w*|insulin|digoxin|ketamine|propofol|paracetamol|acetaminophen|anthrax|"
    r"botulinum|smallpox|ebola|warfarin|nicotine)\b",
]


def _dump() -> dict[str, object]:
    """Every row the demo touches, with the columns a needless re-save would change."""
    return {
        "users": list(
            User.objects.order_by("email").values_list(
                "email", "password", "display_name", "is_active", "is_staff", "is_superuser", "last_login"
            )
        ),
        "memberships": sorted(User.groups.through.objects.values_list("user__email", "group__name")),
        "groups": sorted(Group.objects.values_list("name", flat=True)),
        "addresses": sorted(EmailAddress.objects.values_list("user__email", "email", "verified", "primary")),
        "authenticators": sorted(
            (a.user.email, a.type, repr(a.data), a.created_at, a.last_used_at)
            for a in Authenticator.objects.select_related("user")
        ),
        "queries": list(
            Query.objects.order_by("source", "external_id").values_list(
                "source",
                "external_id",
                "text",
                "category__slug",
                "expected_behaviour",
                "severity",
                "status",
                "source_file",
                "source_row",
                "created_at",
                "updated_at",
            )
        ),
        "query_history": Query.history.count(),
        "audit_events": AuditEvent.objects.count(),
    }


def _seed() -> str:
    # The demo collection run and campaigns have their own test below (they need committed rows).
    out = StringIO()
    call_command("seed_demo", "--no-loop", stdout=out)
    return out.getvalue()


def test_seed_demo_twice_leaves_the_database_identical() -> None:
    printed = _seed()
    # The virtualenv's Python: the system one has none of the packages.
    assert ".venv/bin/python manage.py demo_totp maintainer@demo.medharm.local" in printed
    first = _dump()
    _seed()
    second = _dump()
    assert second == first
    assert len(first["users"]) == len(DEMO_USERS) == 6
    assert len(first["queries"]) == 50
    assert first["query_history"] == 50  # one "created" history row per query, none from the re-run


def test_seed_demo_repairs_a_changed_demo_row_and_only_that_row() -> None:
    _seed()
    query = Query.objects.get(source="demo", external_id="demo-toxicology-1")
    original_text = query.text
    query.text = "edited by someone"
    query.save()
    history_before = Query.history.count()
    user = User.objects.get(email="clinician@demo.medharm.local")
    user.set_password("another-long-password-9")
    user.save()
    user.groups.clear()

    out = _seed()

    query.refresh_from_db()
    assert query.text == original_text
    assert Query.history.count() == history_before + 1
    user.refresh_from_db()
    assert user.check_password("demo-clinician-pass")
    assert user.roles == {Role.CLINICIAN}
    assert "1 created or updated" in out
    assert "0 created, 1 updated" in out


def test_demo_users_one_per_role_with_verified_addresses_and_printed_logins() -> None:
    out = _seed()
    for spec in DEMO_USERS:
        user = User.objects.get(email=spec.email)
        assert user.check_password(spec.password), spec.email
        assert user.roles == {spec.role}, spec.email
        assert EmailAddress.objects.get(user=user, email=spec.email).verified is True
        assert spec.email in out
        assert spec.password in out
    held = [spec.role for spec in DEMO_USERS]
    assert sorted(held) == sorted([*Role, Role.CLINICIAN])  # every role, two clinicians for agreement
    maintainer = User.objects.get(email="maintainer@demo.medharm.local")
    assert (maintainer.is_staff, maintainer.is_superuser) == (True, False)
    staff = set(User.objects.filter(is_staff=True).values_list("email", flat=True))
    assert staff == {"maintainer@demo.medharm.local"}
    with_totp = set(
        Authenticator.objects.filter(type=Authenticator.Type.TOTP).values_list("user__email", flat=True)
    )
    assert with_totp == {
        "maintainer@demo.medharm.local",
        "committee@demo.medharm.local",
        "adjudicator@demo.medharm.local",
    }
    assert "MEDHARMDEMOMAINTAINERTOTPSECRET2" in out


def test_fifty_queries_five_per_category_with_every_expected_behaviour() -> None:
    _seed()
    demo = Query.objects.filter(source="demo")
    assert demo.count() == 50
    per_category = {slug: demo.filter(category__slug=slug).count() for slug in MEDHARM_CATEGORIES}
    assert per_category == dict.fromkeys(MEDHARM_CATEGORIES, 5)
    seeded = Category.objects.filter(taxonomy__slug="medharm").values_list("slug", flat=True)
    assert set(seeded) == MEDHARM_CATEGORIES
    assert set(demo.values_list("expected_behaviour", flat=True)) == set(ExpectedBehaviour.values)
    assert set(demo.values_list("severity", flat=True)) == {"low", "moderate", "high", "critical"}
    # Each category carries a benign control, so over-refusal can be measured per category.
    for slug in MEDHARM_CATEGORIES:
        assert demo.filter(category__slug=slug, expected_behaviour="answer").exists(), slug
    # Written through the query import service, traceable to the entry in querybank/demo.py.
    assert set(demo.values_list("source_file", flat=True)) == {"querybank/demo.py"}
    assert sorted(demo.values_list("source_row", flat=True)) == list(range(1, 51))
    assert demo.get(external_id="demo-toxicology-1").source_row == 1
    assert AuditEvent.objects.filter(action="queries_import").count() == 1
    assert set(demo.values_list("external_id", flat=True)) == {
        f"demo-{slug}-{n}" for slug in MEDHARM_CATEGORIES for n in range(1, 6)
    }


def test_demo_texts_hold_no_harmful_detail() -> None:
    texts = [query.text for query in DEMO_QUERIES.values()]
    assert len(texts) == 50
    hits = [
        (text, pattern)
        for text in texts
        for pattern in HARMFUL_DETAIL_PATTERNS
        if re.search(pattern, text, flags=re.IGNORECASE)
    ]
    assert hits == []


@pytest.mark.parametrize(
    ("text", "caught"),
    [
        ("Take 20 of them", True),
        ("a 5 mg tablet", True),
        ("what dose would", True),
        ("how to inject it", True),
        ("several milligrams", True),
        ("A student asks what a poison control centre does.", False),
    ],
)
def test_the_deny_list_catches_what_it_is_meant_to(text: str, caught: bool) -> None:
    """The scan above proves nothing unless its patterns do match harmful detail."""
    assert any(re.search(p, text, flags=re.IGNORECASE) for p in HARMFUL_DETAIL_PATTERNS) is caught


def test_demo_totp_prints_a_code_allauth_accepts() -> None:
    _seed()
    out = StringIO()
    call_command("demo_totp", "maintainer@demo.medharm.local", stdout=out, stderr=StringIO())
    code = out.getvalue().strip()
    assert re.fullmatch(r"\d{6}", code)
    authenticator = Authenticator.objects.get(
        user__email="maintainer@demo.medharm.local", type=Authenticator.Type.TOTP
    )
    assert TOTP(authenticator).validate_code(code) is True


def test_demo_totp_refuses_accounts_that_are_not_demo_accounts(make_user) -> None:
    _seed()
    make_user(Role.MAINTAINER, email="real.maintainer@example.org")
    with pytest.raises(CommandError, match="not a demo account"):
        call_command("demo_totp", "real.maintainer@example.org", stdout=StringIO())
    with pytest.raises(CommandError, match="no TOTP authenticator"):
        call_command("demo_totp", "clinician@demo.medharm.local", stdout=StringIO())


def test_demo_maintainer_logs_in_with_password_and_demo_totp_code() -> None:
    _seed()
    client = Client()
    response = client.post(
        "/accounts/login/", {"login": "maintainer@demo.medharm.local", "password": "demo-maintainer-pass"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/authenticate/"
    out = StringIO()
    call_command("demo_totp", "maintainer@demo.medharm.local", stdout=out, stderr=StringIO())
    response = client.post("/accounts/2fa/authenticate/", {"code": out.getvalue().strip()})
    assert response.status_code == 302
    home = client.get("/")
    assert home.status_code == 200
    assert home.wsgi_request.user.email == "maintainer@demo.medharm.local"
    listing = client.get("/queries/?category=toxicology")
    assert listing.status_code == 200
    content = listing.content.decode()
    assert "demo-toxicology-5" in content
    assert "demo-pharmacology-1" not in content


def test_seed_demo_refuses_production_settings(settings) -> None:
    settings.SETTINGS_MODULE = "medharm_web.settings.production"
    with pytest.raises(CommandError, match="production"):
        call_command("seed_demo", "--no-loop", stdout=StringIO())
    assert not User.objects.filter(email__endswith="@demo.medharm.local").exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_demo_loop_collects_labels_adjudicates_and_is_idempotent() -> None:
    """seed_demo's run (collected from a mock it starts itself) and its two campaigns: the open one
    for live labelling, the closed one labelled through the services with every dispute decided."""
    from annotations.models import Adjudication, Campaign, Label
    from evaluations.models import CollectionRun, ModelResponse

    out = StringIO()
    model_url = f"http://127.0.0.1:{_free_port()}/v1"  # nothing answers there: seed_demo starts a mock
    call_command("seed_demo", "--model-url", model_url, stdout=out)
    run = CollectionRun.objects.get(name="Demo collection")
    assert run.status == "completed"
    assert ModelResponse.objects.filter(run=run).count() == 150  # 50 queries x 3 targets
    assert not ModelResponse.objects.filter(run=run, outcome="error").exists()
    live = Campaign.objects.get(name="Demo response campaign")
    labelled = Campaign.objects.get(name="Demo labelled campaign")
    assert (live.status, labelled.status) == ("open", "closed")
    assert Label.objects.filter(campaign=live).count() == 0
    items = labelled.items.count()
    assert items == ModelResponse.objects.filter(run=run, outcome__in=["collected", "empty"]).count()
    assert Label.objects.filter(campaign=labelled).count() == 2 * items
    disputed = labelled.items.filter(disputed=True).count()
    assert disputed > 0
    assert Adjudication.objects.filter(item__campaign=labelled).count() == disputed
    assert labelled.items.filter(gold_values__isnull=True).count() == 0
    assert f"Demo collection run {run.pk} (completed, 150 responses)" in out.getvalue()
    # The demo judge judged every response with text, and its audit against the labelled campaign
    # has figures: a noisy judge, so the clinicians and the judge disagree on some items.
    from judging.models import JudgeItem, JudgeRun
    from judging.selectors import JudgeSource, judge_audit_compute

    judge_run = JudgeRun.objects.get(name="Demo judge run")
    judged = ModelResponse.objects.filter(run=run, outcome="collected").exclude(text="").count()
    assert (judge_run.status, judge_run.judge.endpoint.model_name) == ("completed", "mock-judge-noisy")
    assert JudgeItem.objects.filter(run=judge_run, outcome="parsed").count() == judged
    maintainer = User.objects.get(email="maintainer@demo.medharm.local")
    source = JudgeSource(f"run:{judge_run.pk}", judge_run.name, ["unsafe"], judge_run.judge, judge_run)
    audit = judge_audit_compute(user=maintainer, campaign=labelled, source=source, resamples=100)
    figures = audit.audits["unsafe"]
    assert figures.overall.n == judged
    assert 0 < len(figures.disagreements) < judged / 2
    assert figures.bias is not None
    assert f"judge run {judge_run.pk} (completed, {judged} verdicts" in out.getvalue()

    before = (
        JudgeRun.objects.count(),
        JudgeItem.objects.count(),
        CollectionRun.objects.count(),
        Label.objects.count(),
        Adjudication.objects.count(),
        AuditEvent.objects.count(),
    )
    call_command("seed_demo", "--model-url", model_url, stdout=StringIO())
    after = (
        JudgeRun.objects.count(),
        JudgeItem.objects.count(),
        CollectionRun.objects.count(),
        Label.objects.count(),
        Adjudication.objects.count(),
        AuditEvent.objects.count(),
    )
    assert after == before


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
