"""order read models: orders, order_counters, order_history

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0003"
down_revision: str | None = "0002"
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
UUID = sa.String(36)


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("order_id", UUID, nullable=False),
        sa.Column("restaurant_id", UUID, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("table_id", UUID, nullable=True),
        sa.Column("customer_name", sa.String(255), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("tip_cents", sa.BigInteger(), nullable=False),
        sa.Column("paid_cents", sa.BigInteger(), nullable=False),
        sa.Column("payment_method", sa.String(16), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("ready_at", TIMESTAMP, nullable=True),
        sa.Column("served_at", TIMESTAMP, nullable=True),
        sa.Column("paid_at", TIMESTAMP, nullable=True),
        sa.Column("cancelled_at", TIMESTAMP, nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
        **TABLE_OPTIONS,
    )
    op.create_index(
        "ix_orders_restaurant_status_created",
        "orders",
        ["restaurant_id", "status", "created_at", "order_id"],
    )
    op.create_index(
        "ix_orders_restaurant_created", "orders", ["restaurant_id", "created_at", "order_id"]
    )
    op.create_index("ix_orders_table_created", "orders", ["table_id", "created_at", "order_id"])
    op.create_table(
        "order_counters",
        sa.Column("restaurant_id", UUID, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("restaurant_id", "status"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "order_history",
        sa.Column("order_id", UUID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("restaurant_id", UUID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("request_id", sa.String(255), nullable=True),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("order_id", "version"),
        **TABLE_OPTIONS,
    )
    op.create_index(
        "ix_order_history_restaurant_order",
        "order_history",
        ["restaurant_id", "order_id", "version"],
    )


def downgrade() -> None:
    op.drop_index("ix_order_history_restaurant_order", table_name="order_history")
    op.drop_table("order_history")
    op.drop_table("order_counters")
    op.drop_index("ix_orders_table_created", table_name="orders")
    op.drop_index("ix_orders_restaurant_created", table_name="orders")
    op.drop_index("ix_orders_restaurant_status_created", table_name="orders")
    op.drop_table("orders")
