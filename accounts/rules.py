"""Loaded by rules' autodiscovery: registers the permissions defined in ``accounts.policy``."""

import accounts.policy  # noqa: F401
