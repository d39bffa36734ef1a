"""menu and daily sales read models

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0004"
down_revision: str | None = "0003"
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
    # -- menu ----------------------------------------------------------------------------
    op.create_table(
        "menu_categories",
        sa.Column("category_id", UUID, nullable=False),
        sa.Column("restaurant_id", UUID, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("category_id"),
        **TABLE_OPTIONS,
    )
    op.create_index(
        "ix_menu_categories_restaurant_order",
        "menu_categories",
        ["restaurant_id", "sort_order", "name"],
    )
    op.create_table(
        "menu_items",
        sa.Column("menu_item_id", UUID, nullable=False),
        sa.Column("restaurant_id", UUID, nullable=False),
        sa.Column("category_id", UUID, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("search_name", sa.String(400), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("is_available", sa.Boolean(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("menu_item_id"),
        **TABLE_OPTIONS,
    )
    op.create_index(
        "ix_menu_items_restaurant_category", "menu_items", ["restaurant_id", "category_id"]
    )
    op.create_index(
        "ix_menu_items_restaurant_available", "menu_items", ["restaurant_id", "is_available"]
    )
    op.create_index(
        "ix_menu_items_restaurant_archived_name",
        "menu_items",
        ["restaurant_id", "archived", "name"],
    )
    op.create_table(
        "menu_generations",
        sa.Column("restaurant_id", UUID, nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("restaurant_id"),
        **TABLE_OPTIONS,
    )

    # -- daily sales ---------------------------------------------------------------------
    op.create_table(
        "daily_sales",
        sa.Column("restaurant_id", UUID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("paid_orders", sa.Integer(), nullable=False),
        sa.Column("cancelled_orders", sa.Integer(), nullable=False),
        sa.Column("revenue_cents", sa.BigInteger(), nullable=False),
        sa.Column("tips_cents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("restaurant_id", "day"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "daily_sales_items",
        sa.Column("restaurant_id", UUID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("menu_item_id", UUID, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("revenue_cents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("restaurant_id", "day", "menu_item_id"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "daily_sales_hours",
        sa.Column("restaurant_id", UUID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hour", sa.SmallInteger(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue_cents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("restaurant_id", "day", "hour"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "sales_open_orders",
        sa.Column("order_id", UUID, nullable=False),
        sa.Column("restaurant_id", UUID, nullable=False),
        sa.Column("placed_day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
        **TABLE_OPTIONS,
    )
    op.create_index("ix_sales_open_orders_restaurant", "sales_open_orders", ["restaurant_id"])
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


def downgrade() -> None:
    op.drop_index("ix_sales_open_lines_restaurant", table_name="sales_open_lines")
    op.drop_table("sales_open_lines")
    op.drop_index("ix_sales_open_orders_restaurant", table_name="sales_open_orders")
    op.drop_table("sales_open_orders")
    op.drop_table("daily_sales_hours")
    op.drop_table("daily_sales_items")
    op.drop_table("daily_sales")
    op.drop_table("menu_generations")
    op.drop_index("ix_menu_items_restaurant_archived_name", table_name="menu_items")
    op.drop_index("ix_menu_items_restaurant_available", table_name="menu_items")
    op.drop_index("ix_menu_items_restaurant_category", table_name="menu_items")
    op.drop_table("menu_items")
    op.drop_index("ix_menu_categories_restaurant_order", table_name="menu_categories")
    op.drop_table("menu_categories")
