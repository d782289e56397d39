"""The layering rules of CONVENTIONS.md, checked by parsing imports."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_DOMAIN = (
    "slack_bolt",
    "slack_sdk",
    "sqlalchemy",
    "sqlmodel",
    "apscheduler",
    "storage",
    "handlers",
    "bot.services",
    "waitress",
    "alembic",
)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports (absolute names)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_domain_imports_no_slack_sql_or_scheduler():
    offenders = []
    for path in sorted((ROOT / "bot" / "domain").glob("*.py")):
        for name in imports_of(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IN_DOMAIN):
                offenders.append(f"{path.name} imports {name}")
    assert not offenders, offenders


def test_domain_has_no_clock_of_its_own():
    offenders = []
    for path in sorted((ROOT / "bot" / "domain").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for bad in ("datetime.now(", "datetime.utcnow(", "date.today(", "time.time("):
            if bad in text:
                offenders.append(f"{path.name}: {bad}")
    assert not offenders, offenders


def test_handlers_do_not_reach_into_storage():
    offenders = []
    for path in sorted((ROOT / "handlers").glob("*.py")):
        for name in imports_of(path):
            if (
                name == "storage"
                or name.startswith("storage.")
                or name.startswith("sqlalchemy")
                or name.startswith("sqlmodel")
            ):
                offenders.append(f"{path.name} imports {name}")
    assert not offenders, offenders


def test_the_architecture_test_sees_files():
    assert len(list((ROOT / "bot" / "domain").glob("*.py"))) >= 6
    assert len(list((ROOT / "handlers").glob("*.py"))) >= 6
