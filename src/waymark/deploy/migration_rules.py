"""The expand/contract rule for Alembic migrations, checked on their source.

During a rolling deploy the previous release runs against the new schema, so a migration
that ships with a release may only *expand* the schema (add tables, nullable columns,
indexes). Operations that break the previous release's code -- dropping or renaming tables
and columns, tightening or retyping columns -- belong in a separate *contract* migration,
shipped one release later, once no running code uses the old shape. Such a migration says
so with a module-level ``phase = "contract"`` and contains no expand operations.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

BREAKING = {"drop_table", "drop_column", "rename_table", "drop_constraint"}
EXPANDING = {"create_table", "add_column", "create_index", "create_foreign_key",
             "create_unique_constraint", "create_check_constraint", "bulk_insert"}
# alter_column keyword arguments that cannot break code written for the old schema
HARMLESS_ALTER = {"server_default", "comment", "existing_type", "existing_nullable",
                  "existing_server_default", "existing_comment", "table_name", "column_name",
                  "schema"}
BREAKING_SQL = ("DROP TABLE", "DROP COLUMN", "RENAME ", "ALTER COLUMN")


@dataclass(frozen=True)
class Violation:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def _upgrade(tree: ast.Module) -> ast.FunctionDef | None:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "upgrade":
            return node
    return None


def _phase(tree: ast.Module) -> str:
    for node in tree.body:
        if (isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "phase" for t in node.targets)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            return node.value.value
    return "expand"


def _breaking(call: ast.Call, name: str) -> str | None:
    if name in BREAKING:
        return f"{name}() breaks the running release"
    if name == "alter_column":
        if any(k.arg == "nullable" and isinstance(k.value, ast.Constant) and k.value.value is True
               for k in call.keywords):
            return None
        risky = [k.arg for k in call.keywords if k.arg not in HARMLESS_ALTER]
        if risky:
            return f"alter_column({', '.join(str(r) for r in risky)}=...) breaks the running release"
    if name == "execute":
        for arg in call.args:
            text = arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else ""
            hit = next((s for s in BREAKING_SQL if s in text.upper()), None)
            if hit:
                return f"execute() with {hit.strip()} breaks the running release"
    return None


def check_source(source: str, filename: str) -> list[Violation]:
    """Violations of the expand/contract rule in one migration module's upgrade()."""
    tree = ast.parse(source, filename)
    upgrade = _upgrade(tree)
    if upgrade is None:
        return []
    phase = _phase(tree)
    if phase not in {"expand", "contract"}:
        return [Violation(filename, 1, f'phase = "{phase}": use "expand" or "contract"')]
    out = []
    for node in ast.walk(upgrade):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name = node.func.attr
        problem = _breaking(node, name)
        if problem and phase != "contract":
            out.append(Violation(filename, node.lineno, problem + ': move it to a migration '
                                 'with phase = "contract", shipped one release later'))
        if name in EXPANDING and phase == "contract":
            out.append(Violation(filename, node.lineno, f"{name}() in a contract migration: "
                                 "expand and contract go in separate releases"))
    return out


def check_directory(versions: Path) -> list[Violation]:
    out: list[Violation] = []
    for path in sorted(versions.glob("*.py")):
        out.extend(check_source(path.read_text(), path.name))
    return out
