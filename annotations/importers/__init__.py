"""Reading annotations made in another tool (long format, JSONL or CSV): pure Python, no Django.

One row is one rating: ``item, model, prompt, response, rater, field, value`` and optionally
``adjudicated`` (the gold value of that item and field), ``category``, ``expected_behaviour`` and
``prompt_id``. A value listed in the rules' ``missing_values`` (or the field's declared missing
option) is a rating left empty, not an error. The format is documented in docs/annotation.md.
Every problem is reported with its file, line and field, and nothing is imported while any remains
(the query import's rule and error types).

The files are read twice and never held: ``AnnotationPlan.check`` reads every row, checks it and
keeps a few integers per item, prompt and rater (``AnnotationPlan``); the service then reads the
rows again (``AnnotationPlan.rows``) and writes each item as soon as its last row has gone by. A
file that is not the same bytes the second time is refused.
"""

from annotations.importers.files import FileChanged, Source, sources_open
from annotations.importers.plan import AnnotationPlan
from annotations.importers.rules import (
    FORMATS,
    AnnotationImportRejected,
    CheckedRow,
    ImportRules,
)
from core.imports import ImportProblem

__all__ = [
    "FORMATS",
    "AnnotationImportRejected",
    "AnnotationPlan",
    "CheckedRow",
    "FileChanged",
    "ImportProblem",
    "ImportRules",
    "Source",
    "sources_open",
]
