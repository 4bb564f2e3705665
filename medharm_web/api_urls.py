"""The versioned API: one router for every app's viewsets, plus the caller's token endpoint."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from accounts.api import AuthTokenView
from annotations import api as annotations_api
from evaluations.api import EndpointViewSet, PipelineViewSet, ResponseViewSet, RunViewSet
from judging import api as judging_api
from querybank.api import CategoryViewSet, QueryViewSet, TaxonomyViewSet
from releases import api as releases_api
from scoring import api as scoring_api

# No ".json"/".csv" suffix routes: the custom actions take no ``format`` argument, and the
# ``?format=`` parameter and the Accept header choose the renderer already.
router = DefaultRouter()
router.include_format_suffixes = False
router.register("taxonomies", TaxonomyViewSet, basename="taxonomy")
router.register("categories", CategoryViewSet, basename="category")
router.register("queries", QueryViewSet, basename="query")
router.register("endpoints", EndpointViewSet, basename="endpoint")
router.register("pipelines", PipelineViewSet, basename="pipeline")
router.register("runs", RunViewSet, basename="run")
router.register("responses", ResponseViewSet, basename="response")
annotations_api.register(router)
scoring_api.register(router)
judging_api.register(router)
releases_api.register(router)

urlpatterns = [
    path("auth/token/", AuthTokenView.as_view(), name="api-auth-token"),
    *releases_api.urlpatterns,
    *router.urls,
]
