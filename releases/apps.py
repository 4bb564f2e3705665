from typing import Any

from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    name = "releases"
    verbose_name = "Benchmark releases"

    def ready(self) -> None:
        from accounts.policy import mfa_duty_register

        # A delegated reviewer decides who may read a release's restricted data: as the committee
        # does, they must use a second factor (the rule itself lives in accounts.policy).
        mfa_duty_register(_is_delegated_reviewer)


def _is_delegated_reviewer(user: Any) -> bool:
    from releases.models import Release

    # The link table alone (no join to the release): this runs on every request of a signed-in
    # user without an MFA role (``accounts.middleware``).
    return Release.reviewers.through.objects.filter(user_id=user.pk).exists()
