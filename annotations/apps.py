from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    name = "annotations"
    verbose_name = "Annotation"

    def ready(self) -> None:
        from annotations.selectors import query_items_blind_for
        from querybank.selectors import blind_items_register

        # The query bank hides what an open blind query campaign asks its annotators to decide.
        blind_items_register(query_items_blind_for)
