"""jobs.attempt, jobs.worker and periodic_runs: job workers on several nodes (expand only)

A running import job carries its attempt number (and which worker runs it), so a job whose worker died can be taken
over by another worker and only the newest attempt may finish it. periodic_runs holds one
row per periodic task and scheduled minute: the worker that inserts it runs the task.

Revision ID: cluster_jobs
Revises: 0003
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = 'cluster_jobs'
down_revision = 'basemap_map_controls'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('jobs', sa.Column('attempt', sa.Integer(), nullable=True))
    op.add_column('jobs', sa.Column('worker', sa.String(length=200), nullable=True))
    op.create_table('periodic_runs',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('scheduled_for', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=200), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name', 'scheduled_for')
    )


def downgrade() -> None:
    op.drop_table('periodic_runs')
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('attempt')
        batch.drop_column('worker')
