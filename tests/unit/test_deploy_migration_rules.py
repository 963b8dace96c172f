"""Every migration obeys the expand/contract rule, so rolling deploys never break the
release that is still running (docs/operations/deploy.md)."""

from __future__ import annotations

import pytest

from waymark.db.migrate import MIGRATIONS
from waymark.deploy.migration_rules import check_directory, check_source


def test_shipped_migrations_follow_expand_contract() -> None:
    assert list((MIGRATIONS / "versions").glob("*.py")), "no migrations found"
    assert check_directory(MIGRATIONS / "versions") == []


def migration(body: str, phase: str | None = None) -> str:
    head = f'phase = "{phase}"\n' if phase else ""
    lines = "\n".join("    " + line for line in body.strip().splitlines())
    return f"{head}from alembic import op\nimport sqlalchemy as sa\n\ndef upgrade():\n{lines}\n"


@pytest.mark.parametrize("body", [
    'op.drop_column("maps", "title")',
    'op.drop_table("maps")',
    'op.rename_table("maps", "charts")',
    'op.alter_column("maps", "title", new_column_name="name")',
    'op.alter_column("maps", "title", nullable=False)',
    'op.alter_column("maps", "title", type_=sa.Integer())',
    'with op.batch_alter_table("maps") as b:\n    b.drop_column("title")',
    'op.execute("ALTER TABLE maps DROP COLUMN title")',
])
def test_breaking_operations_need_a_contract_migration(body: str) -> None:
    violations = check_source(migration(body), "0099_x.py")
    assert len(violations) == 1 and 'phase = "contract"' in violations[0].message
    assert check_source(migration(body, "contract"), "0099_x.py") == []


@pytest.mark.parametrize("body", [
    'op.add_column("maps", sa.Column("note", sa.Text(), nullable=True))',
    'op.create_table("t", sa.Column("id", sa.Integer(), primary_key=True))',
    'op.create_index("ix", "maps", ["title"])',
    'op.drop_index("ix_old", table_name="maps")',
    'op.alter_column("maps", "title", nullable=True)',
    'op.alter_column("maps", "title", server_default="x")',
])
def test_expand_operations_are_allowed(body: str) -> None:
    assert check_source(migration(body), "0099_x.py") == []


def test_contract_migrations_do_not_expand_too() -> None:
    body = 'op.drop_column("maps", "title")\nop.add_column("maps", sa.Column("n", sa.Text()))'
    violations = check_source(migration(body, "contract"), "0099_x.py")
    assert [v.line for v in violations] == [7] and "separate releases" in violations[0].message


def test_unknown_phase_is_an_error() -> None:
    assert "use \"expand\" or \"contract\"" in check_source(migration("pass", "both"), "x.py")[0].message
