"""``manage.py seed_demo``: one demo user per role and 50 synthetic queries; re-running changes nothing."""

import json
import os
from dataclasses import dataclass
from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from allauth.mfa.utils import decrypt, encrypt
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import User
from accounts.roles import Role
from accounts.services import role_assign, role_remove
from annotations.demo import demo_campaigns_ensure
from annotations.models import Campaign
from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import SYSTEM
from evaluations.demo import DEFAULT_MOCK_URL, demo_registry_ensure, demo_run_ensure
from evaluations.models import CollectionRun
from judging.demo import demo_judge_run_ensure
from judging.models import JudgeRun
from querybank.demo import DEMO_QUERIES, DEMO_SOURCE, DEMO_SOURCE_FILE
from querybank.models import Query, QueryStatus
from querybank.services import queries_import

DEMO_DOMAIN = "demo.medharm.local"


@dataclass(frozen=True)
class DemoUser:
    email: str
    password: str
    role: Role
    display_name: str
    is_staff: bool = False
    # Fixed base32 TOTP secret for roles that must use a second factor (``demo_totp`` prints codes).
    totp_secret: str = ""


# Fixed, printed credentials: this is demo data for a local machine, never for production.
DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser(f"clinician@{DEMO_DOMAIN}", "demo-clinician-pass", Role.CLINICIAN, "Demo clinician A"),
    # A second clinician, so that annotations can overlap and agreement can be computed.
    DemoUser(f"clinician2@{DEMO_DOMAIN}", "demo-clinician2-pass", Role.CLINICIAN, "Demo clinician B"),
    DemoUser(
        f"adjudicator@{DEMO_DOMAIN}",
        "demo-adjudicator-pass",
        Role.ADJUDICATOR,
        "Demo adjudicator",
        totp_secret="MEDHARMDEMOADJUDICATORTOTPKEY234",  # noqa: S106 - public demo secret
    ),
    DemoUser(
        f"maintainer@{DEMO_DOMAIN}",
        "demo-maintainer-pass",
        Role.MAINTAINER,
        "Demo maintainer",
        is_staff=True,
        totp_secret="MEDHARMDEMOMAINTAINERTOTPSECRET2",  # noqa: S106 - public demo secret
    ),
    DemoUser(
        f"committee@{DEMO_DOMAIN}",
        "demo-committee-pass",
        Role.DATA_COMMITTEE,
        "Demo data committee",
        totp_secret="MEDHARMDEMODATACOMMITTEETOTPKEY2",  # noqa: S106 - public demo secret
    ),
    DemoUser(f"researcher@{DEMO_DOMAIN}", "demo-researcher-pass", Role.RESEARCHER, "Demo researcher"),
)


def demo_user_for_email(email: str) -> DemoUser | None:
    email = email.strip().lower()
    return next((spec for spec in DEMO_USERS if spec.email == email), None)


def _user_ensure(spec: DemoUser) -> tuple[User, bool]:
    """The demo user as ``spec`` describes it; saves only what differs. Returns (user, changed)."""
    user = User.objects.filter(email=spec.email).first()
    changed = user is None
    if user is None:
        user = User(email=spec.email)
    wanted: dict[str, Any] = {
        "display_name": spec.display_name,
        "is_active": True,
        "is_staff": spec.is_staff,
        "is_superuser": False,
    }
    for field, value in wanted.items():
        if getattr(user, field) != value:
            setattr(user, field, value)
            changed = True
    # Hashing is salted: re-hashing an unchanged password would rewrite the row on every run.
    if user.pk is None or not user.check_password(spec.password):
        validate_password(spec.password, user)
        user.set_password(spec.password)
        changed = True
    if changed:
        user.full_clean()
        user.save()

    address = EmailAddress.objects.filter(user=user, email=spec.email).first()
    if address is None:
        EmailAddress.objects.create(user=user, email=spec.email, verified=True, primary=True)
        changed = True
    elif not (address.verified and address.primary):
        address.verified = address.primary = True
        address.save()
        changed = True

    for role in Role:
        holds = user.groups.filter(name=role.value).exists()
        if role == spec.role and not holds:
            role_assign(user=user, role=role, actor=SYSTEM)
            changed = True
        elif role != spec.role and holds:
            role_remove(user=user, role=role, actor=SYSTEM)
            changed = True

    if spec.totp_secret:
        changed |= _totp_ensure(user, spec.totp_secret)
    return user, changed


def _totp_ensure(user: User, secret: str) -> bool:
    authenticator = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
    if authenticator is None:
        TOTP.activate(user, secret)
        return True
    if decrypt(authenticator.data["secret"]) != secret:
        authenticator.data = {**authenticator.data, "secret": encrypt(secret)}
        authenticator.save()
        return True
    return False


def _demo_query_rows() -> list[dict[str, str]]:
    """The demo queries as rows of the documented import schema (docs/import-format.md)."""
    return [
        {
            "source": DEMO_SOURCE,
            "external_id": external_id,
            "text": demo.text,
            "category": demo.category,
            "expected_behaviour": demo.expected_behaviour,
            "severity": demo.severity,
            "status": QueryStatus.ACTIVE.value,
        }
        for external_id, demo in DEMO_QUERIES.items()
    ]


def _queries_differ(rows: list[dict[str, str]]) -> bool:
    """True when any demo query is missing or differs from ``rows``."""
    stored = {
        external_id: values
        for external_id, *values in Query.objects.filter(source=DEMO_SOURCE).values_list(
            "external_id", "text", "category__slug", "expected_behaviour", "severity", "status"
        )
    }
    return any(
        stored.get(row["external_id"])
        != [row["text"], row["category"], row["expected_behaviour"], row["severity"], row["status"]]
        for row in rows
    )


def _queries_ensure() -> tuple[int, int]:
    """Import the demo queries through the query import service; returns (created, updated).

    Skipped when every demo query is already as written: an import, even one that changes no
    query, records an audit event, and a re-run must leave the database identical.
    """
    rows = _demo_query_rows()
    if not _queries_differ(rows):
        return 0, 0
    # One JSONL line per demo query, in the order of querybank/demo.py: source_row N is its Nth entry.
    content = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
    result = queries_import(files=[(DEMO_SOURCE_FILE, content)], file_format="jsonl", actor=SYSTEM)
    return result.created, result.updated


def _loop_ensure(*, model_url: str) -> tuple[CollectionRun, list[Campaign], JudgeRun]:
    """A demo collection run over the demo queries, the two demo campaigns over it, and a demo
    judge's run over it (audited against the labelled campaign on the judges' audit page)."""

    def demo_user(role: Role) -> list[User]:
        return [User.objects.get(email=spec.email) for spec in DEMO_USERS if spec.role == role]

    maintainer = demo_user(Role.MAINTAINER)[0]
    run = demo_run_ensure(actor=maintainer, base_url=model_url)
    campaigns = demo_campaigns_ensure(
        run=run,
        maintainer=maintainer,
        clinicians=demo_user(Role.CLINICIAN),
        adjudicator=demo_user(Role.ADJUDICATOR)[0],
    )
    judge_run = demo_judge_run_ensure(run=run, maintainer=maintainer, base_url=model_url)
    return run, campaigns, judge_run


class Command(BaseCommand):
    help = "Create the demo users (one per role, printed logins) and 50 synthetic queries. Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Run even under production settings (the demo passwords are public: local use only).",
        )
        parser.add_argument(
            "--no-loop",
            action="store_true",
            help="Skip the demo collection run and the demo annotation campaigns.",
        )
        parser.add_argument(
            "--model-url",
            default=os.environ.get("MEDHARM_DEMO_MODEL_URL", DEFAULT_MOCK_URL),
            help="Base URL of the mock model server the demo endpoints call (bin/serve starts one).",
        )

    def handle(self, *args: object, **options: Any) -> None:
        if settings.SETTINGS_MODULE.endswith(".production") and not options["allow_production"]:
            raise CommandError(
                "Refusing to create demo users with public passwords under production settings; "
                "pass --allow-production for a local trial."
            )
        with transaction.atomic():
            changed_users = [spec.email for spec in DEMO_USERS if _user_ensure(spec)[1]]
            created, updated = _queries_ensure()
            registry_changes = demo_registry_ensure(base_url=options["model_url"])
            if changed_users or created or updated or registry_changes:
                # Only when something changed, so that a re-run leaves the database identical.
                audit_record(
                    actor=None,
                    action=AuditAction.DEMO_SEED,
                    details={
                        "users": changed_users,
                        "queries_created": created,
                        "queries_updated": updated,
                        "registry_changes": registry_changes,
                    },
                )
        # The demo run and campaigns come after the commit: the collector writes from its own thread.
        loop = _loop_ensure(model_url=options["model_url"]) if not options["no_loop"] else None
        self.stdout.write(
            f"Demo data: {len(DEMO_USERS)} users ({len(changed_users)} created or updated), "
            f"{len(DEMO_QUERIES)} queries ({created} created, {updated} updated); "
            f"demo endpoints on {options['model_url']} ({registry_changes} changes)."
        )
        if loop is not None:
            run, campaigns, judge_run = loop
            self.stdout.write(
                f"Demo collection run {run.pk} ({run.get_status_display().lower()}, "
                f"{run.responses.count()} responses); campaigns: "
                + ", ".join(f"{c.name} ({c.get_status_display().lower()})" for c in campaigns)
                + f"; judge run {judge_run.pk} ({judge_run.get_status_display().lower()}, "
                f"{judge_run.items.count()} verdicts: audit it under Judges)"
            )
        self._print_logins()

    def _print_logins(self) -> None:
        rows = [("role", "e-mail", "password", "second factor")]
        for spec in DEMO_USERS:
            mfa = f"TOTP secret {spec.totp_secret}" if spec.totp_secret else "-"
            role = spec.role.label + (" (staff)" if spec.is_staff else "")
            rows.append((role, spec.email, spec.password, mfa))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        self.stdout.write("")
        for number, row in enumerate(rows):
            cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            self.stdout.write("  ".join(cells).rstrip())
            if number == 0:
                self.stdout.write("  ".join("-" * width for width in widths))
        self.stdout.write(
            "\nLog in at /accounts/login/. For a TOTP prompt run: "
            f".venv/bin/python manage.py demo_totp maintainer@{DEMO_DOMAIN}"
        )
