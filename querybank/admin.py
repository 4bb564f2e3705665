"""Admin views of the query bank. Queries are read-only here: they change through the import and
edit services, which validate, record history and audit. Taxonomies and categories are still edited
here until they get pages and services of their own (issue 14)."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from core.admin import ReadOnlyAdminMixin
from querybank.models import Category, Query, Taxonomy


@admin.register(Taxonomy)
class TaxonomyAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "taxonomy", "position")
    list_filter = ("taxonomy",)


@admin.register(Query)
class QueryAdmin(ReadOnlyAdminMixin, SimpleHistoryAdmin):
    list_display = ("external_id", "source", "category", "expected_behaviour", "severity", "status")
    list_filter = ("source", "status", "expected_behaviour", "severity", "category__taxonomy", "category")
    search_fields = ("external_id", "text")
    list_select_related = ("category",)
