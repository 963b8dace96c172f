"""maps.controls: which controls (search, basemap switcher, feature table, legend) show on
the map's page and in its embed

Revision ID: basemap_map_controls
Revises: 0003
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = 'basemap_map_controls'
down_revision = 'maint_history_floor'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('maps', sa.Column('controls', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('maps') as batch:
        batch.drop_column('controls')
