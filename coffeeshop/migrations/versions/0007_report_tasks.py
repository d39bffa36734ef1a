"""report tasks: full daily reports built by workers off the request path

``active_key`` holds ``<restaurant>/<date>`` while a task is processing and NULL after: its
unique index makes a second request for the same report, while one is running, find the
first task instead of starting another.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE_OPTIONS = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}
TIMESTAMP = (
    sa.DateTime()
    .with_variant(mysql.DATETIME(fsp=6), "mysql")
    .with_variant(mysql.DATETIME(fsp=6), "mariadb")
)
LONG_TEXT = (
    sa.Text().with_variant(mysql.LONGTEXT(), "mysql").with_variant(mysql.LONGTEXT(), "mariadb")
)


def upgrade() -> None:
    op.create_table(
        "report_tasks",
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("restaurant_id", sa.String(36), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("active_key", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_at", TIMESTAMP, nullable=True),
        sa.Column("requested_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("csv", LONG_TEXT, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("task_id"),
        sa.UniqueConstraint("active_key", name="uq_report_tasks_active_key"),
        **TABLE_OPTIONS,
    )
    op.create_index(
        "ix_report_tasks_restaurant_requested", "report_tasks", ["restaurant_id", "requested_at"]
    )
    op.create_index("ix_report_tasks_status_claimed", "report_tasks", ["status", "claimed_at"])


def downgrade() -> None:
    op.drop_index("ix_report_tasks_status_claimed", table_name="report_tasks")
    op.drop_index("ix_report_tasks_restaurant_requested", table_name="report_tasks")
    op.drop_table("report_tasks")
