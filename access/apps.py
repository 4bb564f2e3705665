from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "access"
    verbose_name = "Researcher data access"

    def ready(self) -> None:
        # The policy (accounts) and the release pages (releases) sit below this app: they ask it
        # who is credentialed and granted through their extension points instead of importing it.
        from access import selectors
        from access.authentication import ResearcherTokenAuthentication
        from access.models import ResearcherToken
        from accounts.policy import grant_facts_register
        from releases.access_hooks import access_hooks_register

        grant_facts_register(
            credentialed=lambda user: selectors.researcher_list_credentialed().filter(pk=user.pk).exists(),
            active_grant=lambda user, release: (
                selectors.grant_list_active(user=user).filter(release=release).exists()
            ),
        )
        access_hooks_register(
            restricted_list_for_user=lambda user: selectors.release_list_restricted_for_user(user=user),
            restricted_list_for_credential=lambda auth: (
                selectors.release_list_for_token(token=auth) if isinstance(auth, ResearcherToken) else None
            ),
            credential_label=lambda auth: auth.prefix if isinstance(auth, ResearcherToken) else None,
            authentication_classes=[ResearcherTokenAuthentication],
            agreement_current=selectors.agreement_current,
        )
