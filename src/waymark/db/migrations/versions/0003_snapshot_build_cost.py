"""snapshots.build_ms: what a build cost, so every process paces the next one

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('snapshots', sa.Column('build_ms', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('snapshots') as batch:
        batch.drop_column('build_ms')
