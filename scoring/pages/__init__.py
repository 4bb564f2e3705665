"""What each scoring page shows: figures turned into charts, table rows and drill-down links; one
module per page family, imported from its module (``scores``, ``agreement``, ``drilldowns``, and
``cells`` for what they share).

The views parse the request and call one of these with the campaign's snapshot; these functions
never read the database themselves.
"""
