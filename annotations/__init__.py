"""Clinician annotation: rubrics, guidelines, campaigns, labels and adjudication."""
