"""Logging filters: an expected refusal (403) is one quiet console line, not a traceback twice."""

from __future__ import annotations

import logging

FORBIDDEN = 403


class QuietRefusals(logging.Filter):
    """On ``django.request``: a 403 keeps its one line and loses its traceback, at INFO (a refused
    page is the access policy working). On ``django.server``: runserver's access line for the same
    403 is dropped, as the request logger already said it."""

    def __init__(self, drop: bool = False) -> None:
        super().__init__()
        self.drop = drop

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) != FORBIDDEN:
            return True
        if self.drop:
            return False
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return True
