"""The OpenAPI description of researcher tokens (drf-spectacular finds it by subclassing).

Imported by the root URLconf, beside the schema views, not by ``access.authentication``: the
extension base class brings drf-spectacular's plumbing, with ``rest_framework.test`` and
``django.test`` (about 12 MB and 250 modules), into every process that loads the apps, a Celery
worker building a release included, which never describes an API.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ResearcherTokenScheme(OpenApiAuthenticationExtension):
    target_class = "access.authentication.ResearcherTokenAuthentication"
    name = "researcherToken"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A researcher token (mhr_...), scoped to granted releases; see /access/tokens/.",
        }
