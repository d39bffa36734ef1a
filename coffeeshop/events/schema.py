"""Event store tables (SQLAlchemy Core). Created by the alembic migrations."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql

metadata = MetaData()

# Auto-increment needs INTEGER PRIMARY KEY on SQLite; BIGINT everywhere else.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# Microsecond timestamps on MySQL/MariaDB (DATETIME defaults to whole seconds there).
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
Uuid = String(36)

events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", Uuid, nullable=False),
    Column("restaurant_id", Uuid, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("stream_type", String(32), nullable=False),
    Column("stream_id", Uuid, nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(100), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("data", JSON, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("recorded_at", Timestamp, nullable=False),
    UniqueConstraint("event_id", name="uq_events_event_id"),
    UniqueConstraint("stream_id", "version", name="uq_events_stream_version"),
    UniqueConstraint("restaurant_id", "seq", name="uq_events_restaurant_seq"),
)

restaurant_sequences = Table(
    "restaurant_sequences",
    metadata,
    Column("restaurant_id", Uuid, primary_key=True),
    Column("last_seq", BigInteger, nullable=False, default=0),
    Column("updated_at", Timestamp, nullable=True),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("restaurant_id", Uuid, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("created_at", Timestamp, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("restaurant_id", Uuid, primary_key=True),
    Column("idempotency_key", String(64), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response", JSON, nullable=False),
    Column("stream_id", Uuid, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Index("ix_idempotency_keys_created_at", "created_at"),
)
