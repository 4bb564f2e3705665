"""The app graph of docs/architecture.md holds: each app imports only the apps below it, so there is
no cycle between apps, and the pure packages import no Django app of ours."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Which of our packages each may import (docs/architecture.md draws the same picture). A new app is
# added here, at its place in the graph, or this test fails.
# The pure packages (no Django): provider clients and the mock model server, beside the statistics.
_CLIENTS = {"providers", "mockmodel"}
_BASE = {"core", "audit", "accounts", "querybank", "evaluations", "annotations"} | _CLIENTS
MAY_IMPORT: dict[str, set[str]] = {
    "core": set(),
    "medharm_stats": set(),
    "providers": set(),
    "mockmodel": set(),
    "audit": {"core"},
    "accounts": {"core", "audit"},
    "querybank": {"core", "audit", "accounts"},
    "evaluations": {"core", "audit", "accounts", "querybank"} | _CLIENTS,
    "annotations": {"core", "audit", "accounts", "querybank", "evaluations"} | _CLIENTS,
    "scoring": _BASE | {"medharm_stats"},
    "judging": _BASE | {"medharm_stats", "scoring"},
    "releases": _BASE | {"scoring"},
    "access": {"core", "audit", "accounts", "releases"},
    "portal": _BASE | {"scoring", "judging", "releases", "access"},
    "medharm_web": _BASE | {"scoring", "judging", "releases", "access", "portal"},
}
# Imports that still reach upwards, each named by file: known debt, listed so that no new one can
# appear unnoticed. Empty: the access predicates ask the access app through
# ``accounts.policy.grant_facts_register`` and the release pages through ``releases.access_hooks``.
KNOWN_UPWARD: dict[tuple[str, str], set[str]] = {}
OURS = set(MAY_IMPORT)


def imports_of(package: str) -> dict[str, set[str]]:
    """Our packages imported anywhere in ``package`` (function bodies too), and where."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top != package and (ROOT / top / "__init__.py").exists() and top != "tests":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_package_of_ours_is_placed_in_the_graph() -> None:
    packages = {
        path.parent.name
        for path in ROOT.glob("*/__init__.py")
        if path.parent.name not in {"tests", "bench"} and not path.parent.name.startswith(".")
    }
    assert packages == OURS


def test_each_app_imports_only_the_apps_below_it() -> None:
    offending = {
        (package, imported): sorted(where)
        for package in sorted(OURS)
        for imported, where in imports_of(package).items()
        if imported not in MAY_IMPORT[package]
        and not set(where) <= KNOWN_UPWARD.get((package, imported), set())
    }
    assert offending == {}


def test_the_allowed_graph_has_no_cycle() -> None:
    """Guards the table above: were someone to allow a cycle, this names it."""
    visiting: set[str] = set()
    done: set[str] = set()
    cycles: list[str] = []

    def visit(node: str, trail: list[str]) -> None:
        if node in done:
            return
        if node in visiting:
            cycles.append(" -> ".join([*trail, node]))
            return
        visiting.add(node)
        for nxt in sorted(MAY_IMPORT[node]):
            visit(nxt, [*trail, node])
        visiting.discard(node)
        done.add(node)

    for package in sorted(MAY_IMPORT):
        visit(package, [])
    assert cycles == []


def test_a_process_that_loads_every_url_loads_neither_scipy_nor_pandas() -> None:
    """scipy (statistics, loaded on first use) and pandas (which pyarrow loads when an array is
    built from a Python list) cost about 90 MB and 3 s of start-up in every web process, Celery
    worker and release build that never uses them."""
    import os
    import subprocess
    import sys

    code = (
        "import sys, django; django.setup(); import medharm_web.urls; "
        "print(sorted(m for m in ('scipy', 'pandas', 'sklearn', 'statsmodels') if m in sys.modules))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "medharm_web.settings.base"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
