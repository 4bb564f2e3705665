"""Evaluation: the model registry, pipelines, collection runs and the collector that executes them."""
