"""Identity and tenancy tables: plain relational data, not event-sourced."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql

from coffeeshop.events.schema import Timestamp, Uuid

metadata = MetaData()
Email = String(254).with_variant(mysql.VARCHAR(254, collation="utf8mb4_bin"), "mysql", "mariadb")

restaurants = Table(
    "restaurants",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", Timestamp, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("restaurant_id", Uuid, ForeignKey("restaurants.id"), nullable=False),
    # Binary collation: addresses are stored lower-cased, and "zoë@" must not equal "zoe@".
    Column("email", Email, nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("is_active", Boolean, nullable=False, default=True),
    Column("created_at", Timestamp, nullable=False),
    UniqueConstraint("email", name="uq_users_email"),
    Index("ix_users_restaurant_created", "restaurant_id", "created_at", "id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("restaurant_id", Uuid, ForeignKey("restaurants.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_by", Uuid, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("revoked_at", Timestamp, nullable=True),
    UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    Index("ix_api_keys_restaurant", "restaurant_id"),
)

dining_tables = Table(
    "dining_tables",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("restaurant_id", Uuid, ForeignKey("restaurants.id"), nullable=False),
    Column("label", String(50), nullable=False),
    Column("seats", Integer, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    UniqueConstraint("restaurant_id", "label", name="uq_dining_tables_label"),
    Index("ix_dining_tables_restaurant_created", "restaurant_id", "created_at", "id"),
)
