"""Shared primitives every app may use: the admin's read-only base and other small building blocks.
It imports none of our apps, so it sits at the bottom of the dependency graph (docs/architecture.md)."""
