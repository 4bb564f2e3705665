"""Evaluation: model registry, collection runs, judges, agreement and safety scores."""
