"""An expected refusal is one quiet console line: no traceback, not printed twice."""

import io
import logging
import logging.config

import pytest
from django.test import Client

from accounts.roles import Role
from medharm_web.settings import base

pytestmark = pytest.mark.django_db


def test_a_403_logs_one_line_without_a_traceback(make_user: object) -> None:
    stream = io.StringIO()
    config = {**base.LOGGING, "handlers": {"console": {"class": "logging.StreamHandler", "stream": stream}}}
    config["handlers"]["console"]["formatter"] = "plain"
    before = logging.root.handlers[:]
    logging.config.dictConfig(config)
    try:
        client = Client()
        client.force_login(make_user(Role.RESEARCHER))  # type: ignore[operator]
        assert client.get("/collection/").status_code == 403
    finally:
        logging.config.dictConfig(
            {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
        )
        logging.root.handlers[:] = before
    lines = [line for line in stream.getvalue().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "INFO django.request Forbidden (Permission denied): /collection/" in lines[0]
    assert "Traceback" not in stream.getvalue()
