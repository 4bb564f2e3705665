"""The versioned API: one router for every app's viewsets."""

from rest_framework.routers import DefaultRouter

from querybank.api import CategoryViewSet, QueryViewSet

router = DefaultRouter()
router.register("categories", CategoryViewSet, basename="category")
router.register("queries", QueryViewSet, basename="query")

urlpatterns = router.urls
