"""rebuild progress per part; order_history keyed by (restaurant_id, seq)

A replay spread over jobs has each job read only its own restaurants' events and write
them to the shared shadow tables; each job's keyset position is its own row. Progress rows
only describe a rebuild in flight, so the table is recreated empty: a replay interrupted
across this upgrade starts again from the beginning.

``order_history`` rows are now keyed by the event's place in its restaurant's sequence.
Keyed by (order_id, version), a rebuild inserted every row at a random place of a table
bigger than MariaDB's default buffer pool; now each restaurant's rows are appended in key
order. Lookups by order keep their index (restaurant_id, order_id, version). The rows are
copied into a table of the new shape (the same statements on MySQL and SQLite).

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0006"
down_revision: str | None = "0005"
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


def _progress(*part: sa.Column) -> None:
    op.create_table(
        "projection_rebuilds",
        sa.Column("projection", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        *part,
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("applied", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("projection", "purpose", *(c.name for c in part)),
        **TABLE_OPTIONS,
    )


HISTORY_COLUMNS = (
    "order_id",
    "version",
    "restaurant_id",
    "seq",
    "type",
    "data",
    "actor",
    "request_id",
    "recorded_at",
)
HISTORY_INDEX = "ix_order_history_restaurant_order"


def _rekey_history(*key: str) -> None:
    """Copy ``order_history`` into a table with primary key ``key``, then take its place."""
    op.create_table(
        "order_history_rekeyed",
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("restaurant_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("request_id", sa.String(255), nullable=True),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint(*key),
        **TABLE_OPTIONS,
    )
    columns = ", ".join(HISTORY_COLUMNS)
    op.execute(
        f"INSERT INTO order_history_rekeyed ({columns}) SELECT {columns} FROM order_history"  # noqa: S608 (constant names)
    )
    op.drop_index(HISTORY_INDEX, table_name="order_history")
    op.drop_table("order_history")
    op.rename_table("order_history_rekeyed", "order_history")
    op.create_index(HISTORY_INDEX, "order_history", ["restaurant_id", "order_id", "version"])


def upgrade() -> None:
    op.drop_table("projection_rebuilds")
    _progress(sa.Column("part", sa.String(16), nullable=False))
    _rekey_history("restaurant_id", "seq")


def downgrade() -> None:
    _rekey_history("order_id", "version")
    op.drop_table("projection_rebuilds")
    _progress()
