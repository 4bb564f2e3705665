from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self) -> None:
        # Roles are groups whose permissions must exist before they can be granted, and Django
        # only creates permissions after migrating; syncing on post_migrate (as Django creates its
        # own permissions) keeps every database, fresh or old, with the same role definitions.
        from django.apps import apps
        from django.contrib.auth.management import create_permissions
        from django.contrib.auth.signals import user_logged_in

        from accounts.middleware import privileged_session_start
        from accounts.services import roles_sync

        def _sync(sender: AppConfig, **kwargs: object) -> None:
            if sender.name != self.name:
                return
            using = str(kwargs.get("using", "default"))
            # Other apps' post_migrate may not have run yet: create every permission first
            # (Django's own idempotent step) so that roles can name permissions of any app.
            for app_config in apps.get_app_configs():
                create_permissions(app_config, verbosity=0, using=using)
            roles_sync(using=using)

        post_migrate.connect(_sync, dispatch_uid="accounts.roles_sync", weak=False)
        user_logged_in.connect(privileged_session_start, dispatch_uid="accounts.privileged_session_start")
