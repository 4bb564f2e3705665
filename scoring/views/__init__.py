"""Scoring pages, mounted at /scores/ (``scoring.urls``), one module per page family: ``scores``
(leaderboard, heatmap, model-vs-model), ``drilldowns``, ``agreement`` (with a clinician's own), and
``reports`` with their downloads; ``base`` holds what they share."""
