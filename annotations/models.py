"""Annotation models. Campaigns, rubrics and labels arrive with the annotation issue (#4)."""
