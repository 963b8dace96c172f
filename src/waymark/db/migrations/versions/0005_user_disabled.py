"""users.disabled_at: account administration (a disabled account has no sessions or tokens)

Revision ID: maint_accounts
Revises: maint_readonly
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = 'maint_accounts'
down_revision = 'maint_readonly'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('users', sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.drop_column('disabled_at')
