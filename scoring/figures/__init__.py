"""Every figure of the dashboards and reports, computed from a ``CampaignData`` snapshot; one module
per concept, imported from its module (``scoring.figures.agreement``, ``.gold``, ``.scores``...).

No database access here: ``scoring.selectors.snapshot.campaign_data`` reads, these modules turn the
rows into ``medharm_stats`` inputs (rating tables, score records) and call the statistics; none
imports Django (``tests/medharm_stats/test_purity.py``). The decisions (which labels count, how a
field's kind picks the alpha level and kappa weights, how gold and drift are defined) are in
``docs/scores.md``.
"""
