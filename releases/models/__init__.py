"""Releases: immutable, versioned cuts of annotation campaigns, and the files each one holds."""

from releases.models.releases import Release, ReleaseFile, ReleaseStatus, Tier

__all__ = ["Release", "ReleaseFile", "ReleaseStatus", "Tier"]
