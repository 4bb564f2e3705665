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

    return Release.objects.filter(reviewers=user).exists()
