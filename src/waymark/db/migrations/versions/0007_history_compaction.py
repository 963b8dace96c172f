"""layers.revertible_from: the oldest version a layer can be reverted to after history
compaction (WAYMARK_HISTORY_KEEP_DAYS)

Revision ID: maint_history_floor
Revises: maint_password_reset
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = 'maint_history_floor'
down_revision = 'maint_password_reset'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('layers', sa.Column('revertible_from', sa.Integer(), nullable=False,
                                      server_default='1'))


def downgrade() -> None:
    with op.batch_alter_table('layers') as batch:
        batch.drop_column('revertible_from')
