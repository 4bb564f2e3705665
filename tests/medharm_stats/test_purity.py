"""The statistics package and the scoring figures are pure: they import with no Django settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from evaluations.models import ResponseOutcome
from medharm_stats.scores import OUTCOMES

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
import {module}
loaded = sorted(name for name in sys.modules if name == "django" or name.startswith("django."))
print(",".join(loaded) or "none")
"""


def _import_alone(module: str) -> str:
    """Import ``module`` in a fresh interpreter with no Django settings; the Django modules it loaded."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_statistics_package_imports_without_django() -> None:
    assert _import_alone("medharm_stats") == "none"
    assert _import_alone("medharm_stats.paired") == "none"
    assert _import_alone("medharm_stats.long_format") == "none"
    assert _import_alone("medharm_stats.judging") == "none"


def test_scoring_figures_import_without_settings() -> None:
    """Every module of the figures package, each alone: one that reached for the database would
    load Django."""
    modules = sorted(path.stem for path in (ROOT / "scoring" / "figures").glob("*.py"))
    assert "agreement" in modules  # the package is where this test looks for it
    for name in modules:
        module = "scoring.figures" if name == "__init__" else f"scoring.figures.{name}"
        assert (module, _import_alone(module)) == (module, "none")
    assert _import_alone("scoring.rows") == "none"


def test_outcome_names_are_the_models_outcomes() -> None:
    """The statistics' outcome codes and the collection's ResponseOutcome are one list, in order."""
    assert tuple(value for value in ResponseOutcome.values if value) == OUTCOMES
