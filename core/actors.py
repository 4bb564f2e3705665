"""Who acts when no person does: the platform itself (data migrations, the demo seeder, the role that
sign-up grants, operator commands run on the server). Services accept it explicitly, so a caller that
forgot its actor (``None``) is refused rather than silently trusted."""

from typing import Final


class SystemActor:
    """The platform acting on its own. Audit events record it as no person (``actor`` empty)."""

    pk: Final = None
    is_authenticated: Final = False
    is_active: Final = True

    def __repr__(self) -> str:
        return "SYSTEM"

    def __str__(self) -> str:
        return "the platform"


SYSTEM: Final = SystemActor()
