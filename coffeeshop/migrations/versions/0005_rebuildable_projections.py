"""per-projection checkpoints, rebuild progress, verify results; open sales orders keep lines

Checkpoints move from one shared table into one table per projection, so that a rebuild can
swap a projection's read tables and its positions in a single rename. The daily sales
working state now keeps an open order's lines in its row; that projection is emptied and
rebuilt from the event store by the projector's catch-up (no checkpoint rows are copied).

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0005"
down_revision: str | None = "0004"
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
KEPT = ("orders", "order_history", "menu")
REBUILT = "daily_sales"
SALES_TABLES = ("daily_sales", "daily_sales_items", "daily_sales_hours", "sales_open_orders")


def _positions(name: str, *extra: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) for c in (*extra, "restaurant_id", "seq", "updated_at")))


def _checkpoint_table(name: str) -> None:
    op.create_table(
        f"{name}_checkpoints",
        sa.Column("restaurant_id", UUID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("restaurant_id"),
        **TABLE_OPTIONS,
    )


def upgrade() -> None:
    for name in (*KEPT, REBUILT):
        _checkpoint_table(name)
    for name in KEPT:
        shared = _positions("projection_checkpoints", "projection")
        own = _positions(f"{name}_checkpoints")
        chosen = sa.select(shared.c.restaurant_id, shared.c.seq, shared.c.updated_at).where(
            shared.c.projection == name
        )
        op.execute(own.insert().from_select(["restaurant_id", "seq", "updated_at"], chosen))
    op.drop_table("projection_checkpoints")

    for table in SALES_TABLES:
        op.execute(sa.table(table).delete())
    op.drop_index("ix_sales_open_lines_restaurant", table_name="sales_open_lines")
    op.drop_table("sales_open_lines")
    with op.batch_alter_table("sales_open_orders") as batch:
        batch.add_column(sa.Column("lines", sa.JSON(), nullable=False))

    op.create_table(
        "projection_rebuilds",
        sa.Column("projection", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("applied", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("projection", "purpose"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "projection_verifications",
        sa.Column("projection", sa.String(64), nullable=False),
        sa.Column("verified_at", TIMESTAMP, nullable=False),
        sa.Column("drift_rows", sa.BigInteger(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("projection"),
        **TABLE_OPTIONS,
    )


def downgrade() -> None:
    op.drop_table("projection_verifications")
    op.drop_table("projection_rebuilds")

    for table in SALES_TABLES:
        op.execute(sa.table(table).delete())
    with op.batch_alter_table("sales_open_orders") as batch:
        batch.drop_column("lines")
    op.create_table(
        "sales_open_lines",
        sa.Column("order_id", UUID, nullable=False),
        sa.Column("line_id", UUID, nullable=False),
        sa.Column("restaurant_id", UUID, nullable=False),
        sa.Column("menu_item_id", UUID, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("unit_price_cents", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "line_id"),
        **TABLE_OPTIONS,
    )
    op.create_index("ix_sales_open_lines_restaurant", "sales_open_lines", ["restaurant_id"])

    op.create_table(
        "projection_checkpoints",
        sa.Column("projection", sa.String(64), nullable=False),
        sa.Column("restaurant_id", UUID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("projection", "restaurant_id"),
        **TABLE_OPTIONS,
    )
    for name in KEPT:
        shared = _positions("projection_checkpoints", "projection")
        own = _positions(f"{name}_checkpoints")
        chosen = sa.select(sa.literal(name), own.c.restaurant_id, own.c.seq, own.c.updated_at)
        columns = ["projection", "restaurant_id", "seq", "updated_at"]
        op.execute(shared.insert().from_select(columns, chosen))
    for name in (*KEPT, REBUILT):
        op.drop_table(f"{name}_checkpoints")
