from django.apps import AppConfig


class JudgingConfig(AppConfig):
    name = "judging"
    verbose_name = "LLM judges"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from judging.selectors import judge_assisted_rates, trusted_judge_labels
        from scoring.judges import JudgeReaders, judge_readers_register

        # The scores pages' judge source reads trusted judge labels through this (scoring sits below).
        judge_readers_register(
            JudgeReaders(trusted_labels=trusted_judge_labels, assisted_rates=judge_assisted_rates)
        )
