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


def test_no_import_circle_inside_handlers():
    modules = {path.stem: path for path in (ROOT / "handlers").glob("*.py") if path.stem != "__init__"}
    graph = {
        name: {
            imported.removeprefix("handlers.")
            for imported in imports_of(path)
            if imported.startswith("handlers.")
        }
        for name, path in modules.items()
    }
    # the listener modules may also be named as `from handlers import x`
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "handlers":
                graph[name].update(a.name for a in node.names if a.name in modules)

    def circle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    return [*path, start]
                if nxt not in path:
                    stack.append((nxt, [*path, nxt]))
        return None

    circles = [c for c in map(circle_from, sorted(graph)) if c]
    assert not circles, circles
    assert graph["commands"] >= {"context", "modals"}  # the graph is really read
