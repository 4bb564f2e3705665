"""Evaluation models. The model registry and collection runs arrive with the collection issue (#3)."""
