"""The provider clients and the mock model server are pure packages: they import with no Django."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
import {module}
ours = ("django", "core", "audit", "accounts", "querybank", "evaluations")
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ours)
print(",".join(loaded) or "none")
"""


@pytest.mark.parametrize(
    "module",
    ["providers", "providers.shared_limits", "providers.secrets", "mockmodel", "mockmodel.runner"],
)
def test_imports_with_no_django_and_no_app_of_ours(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"
