"""The audit trail: one append-only record per consequential write, made in the write's transaction."""
