from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from querybank.models import Category, Query, Taxonomy


@admin.register(Taxonomy)
class TaxonomyAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "taxonomy", "position")
    list_filter = ("taxonomy",)


@admin.register(Query)
class QueryAdmin(SimpleHistoryAdmin):
    list_display = ("external_id", "source", "category", "expected_behaviour", "severity", "status")
    list_filter = ("source", "status", "expected_behaviour", "severity", "category__taxonomy", "category")
    search_fields = ("external_id", "text")
    list_select_related = ("category",)
