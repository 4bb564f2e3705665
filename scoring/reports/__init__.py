"""Campaign reports, one module per concept, imported from its module: the frozen payload
(``build``), how people read it (``display``), its CSV, JSON and ZIP files (``files``) and its PDF
(``pdf``).

The payload is plain JSON made once (``report_create``); every download renders from it, so the
HTML page, the PDF and the files always show the same numbers.
"""
