import functools
from typing import Any

from django.apps import AppConfig
from django.db import connection


class ReleasesConfig(AppConfig):
    name = "releases"
    verbose_name = "Benchmark releases"

    def ready(self) -> None:
        from accounts.policy import mfa_duty_register

        # A delegated reviewer decides who may read a release's restricted data: as the committee
        # does, they must use a second factor (the rule itself lives in accounts.policy).
        mfa_duty_register(_is_delegated_reviewer)


def _is_delegated_reviewer(user: Any) -> bool:
    # The link table alone, in SQL written once (the ORM compiling this query cost more than
    # running it): this runs on every request of a signed-in user without an MFA role
    # (``accounts.middleware``).
    with connection.cursor() as cursor:
        cursor.execute(_reviewer_sql(), [user.pk])
        return cursor.fetchone() is not None


@functools.cache
def _reviewer_sql() -> str:
    from releases.models import Release

    link = Release.reviewers.through
    quote = connection.ops.quote_name
    user_column = link._meta.get_field("user").column
    table = quote(link._meta.db_table)
    return f"SELECT 1 FROM {table} WHERE {quote(user_column)} = %s LIMIT 1"  # noqa: S608 - model names
