"""Reads of the scoring app, one module per concept; import selectors from their modules:
``campaigns`` (what a user may open), ``snapshot`` (one campaign's rows, and its state),
``drilldowns`` (the labels of one page of a drill-down)."""
