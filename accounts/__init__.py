"""Accounts, roles and the access policy of the platform."""
