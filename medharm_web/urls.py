"""Root URLs: pages, accounts (allauth), admin, and the API with its schema and docs."""

from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from access import openapi  # noqa: F401  (registers the researcher token's OpenAPI description)
from accounts import views as account_views
from portal import views as portal_views

# The admin's own login form would accept a password alone; allauth's flow asks for the second factor.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]  # wraps this site's view

urlpatterns = [
    path("", portal_views.home, name="home"),
    path("accounts/invite/", account_views.invite, name="invite"),
    path("accounts/", include("allauth.urls")),
    path("queries/", include("querybank.urls")),
    path("collection/", include("evaluations.urls")),
    path("annotate/", include("annotations.urls")),
    path("scores/", include("scoring.urls")),
    path("judges/", include("judging.urls")),
    path("releases/", include("releases.urls")),
    path("access/", include("access.urls")),
    path("audit/", include("audit.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("medharm_web.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # A page, not an API: a signed-out visitor is asked to sign in, and comes back here after.
    path(
        "api/docs/",
        login_required(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
]
