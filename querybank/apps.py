from django.apps import AppConfig


class QuerybankConfig(AppConfig):
    name = "querybank"
    verbose_name = "Query bank"
