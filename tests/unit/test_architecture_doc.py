"""docs/architecture.md is the map of the house: every package and top-level module of
src/waymark has a row in its module table, and every path it names exists. A new package, a
moved or deleted module, breaks this test instead of leaving the map wrong."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "waymark"
DOC = ROOT / "docs" / "architecture.md"
# a backticked relative path: `maps/access.py`, `db/migrations/versions/`, `frontend/api.js`
PATH = re.compile(r"`([\w.-]+(?:/[\w.-]+)*/?)`")
CAPABILITIES = ("sign-up", "sessions", "CSRF", "rate limiting", "imports", "exports",
                "published snapshots", "real time", "read-only", "backups", "restore",
                "metrics", "alerts", "basemap", "geocoding", "styles")
PARTS = ("browser", "HAProxy", "ModSecurity", "granian", "embedded broker", "waymark worker",
         "SQLite", "Litestream", "PostgreSQL", "Patroni", "PgBouncer", "pgBackRest", "Redis",
         "Sentinel", "S3", "Prometheus", "Alertmanager")


def _section(text: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text,
                      re.MULTILINE | re.DOTALL)
    assert match, f"docs/architecture.md has no section '## {heading}'"
    return match.group(1)


def _rows(section: str) -> list[list[str]]:
    """The body rows of the first table in ``section``, as lists of cells."""
    rows = [line.strip().strip("|").split("|") for line in section.splitlines()
            if line.startswith("|")]
    return [[cell.strip() for cell in row] for row in rows[2:]]  # header, separator


def _is_path(token: str) -> bool:
    return "/" in token or token.endswith(".py")


def _exists(token: str, *bases: Path) -> bool:
    return any((base / token.rstrip("/")).exists() for base in bases)


def _code() -> set[str]:
    """Top-level modules (``app.py``) and packages (``maps/``) of src/waymark, namespace
    packages included; folders without Python (templates, built assets) are not modules."""
    found = {p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    found |= {f"{d.name}/" for d in PACKAGE.iterdir()
              if d.is_dir() and d.name != "__pycache__" and any(d.rglob("*.py"))}
    return found


def _table() -> dict[str, str]:
    """Module table: first-cell name -> the job cell."""
    table = {}
    for cells in _rows(_section(DOC.read_text(), "Modules (`src/waymark/`)")):
        names = PATH.findall(cells[0]) or re.findall(r"`([^`]+)`", cells[0])
        for name in names:
            table[name] = cells[1]
    return table


def test_every_package_and_top_level_module_is_in_the_module_table():
    missing = sorted(_code() - set(_table()))
    assert not missing, ("docs/architecture.md's module table has no row for "
                         f"{missing}: add one saying what each is for")


def test_module_table_names_only_what_exists():
    stale = []
    for name, job in _table().items():
        if not _exists(name, PACKAGE):
            stale.append(name)
        package = PACKAGE / name.rstrip("/") if name.endswith("/") else PACKAGE
        for token in filter(_is_path, PATH.findall(job)):
            if not _exists(token, package, PACKAGE, ROOT):
                stale.append(f"{name}: {token}")
    assert not stale, f"docs/architecture.md's module table names missing paths: {stale}"


def test_the_catch_all_ops_package_is_described_module_by_module():
    """ops/ holds unrelated concerns; its row names each module, so none hides there."""
    job = _table()["ops/"]
    unnamed = sorted(p.name for p in (PACKAGE / "ops").glob("*.py")
                     if p.name != "__init__.py" and f"`{p.name}`" not in job)
    assert not unnamed, f"docs/architecture.md's ops/ row does not say what {unnamed} do"


def test_where_things_live_index_points_at_real_modules():
    rows = _rows(_section(DOC.read_text(), "Where things live"))
    assert len(rows) >= 40, "the index lost most of its rows"
    missing = []
    for capability, where in rows:
        paths = [t for t in PATH.findall(where) if _is_path(t)]
        assert paths, f"index row {capability!r} names no module"
        missing += [f"{capability}: {p}" for p in paths if not _exists(p, PACKAGE, ROOT)]
    assert not missing, f"the 'Where things live' index names paths that do not exist: {missing}"
    named = " ".join(row[0] for row in rows).lower()
    absent = [c for c in CAPABILITIES if c.lower() not in named]
    assert not absent, f"the index has no row for {absent}"


def test_run_time_diagram_shows_every_part():
    diagram = _section(DOC.read_text(), "At run time").split("```")[1]
    absent = [part for part in PARTS if part not in diagram]
    assert not absent, f"the run-time diagram leaves out {absent}"
