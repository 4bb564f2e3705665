from django.urls import path

from querybank import views

app_name = "querybank"

urlpatterns = [
    path("", views.query_list, name="query_list"),
    path("<int:query_id>/", views.query_detail, name="query_detail"),
    path("import/", views.query_import, name="query_import"),
    path("export.<str:file_format>", views.query_export, name="query_export"),
    path("taxonomies/", views.taxonomy_list, name="taxonomy_list"),
    path("taxonomies/<int:taxonomy_id>/", views.taxonomy_change, name="taxonomy_change"),
    path("categories/<int:category_id>/", views.category_change, name="category_change"),
]
