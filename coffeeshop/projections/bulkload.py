"""Bulk inserts through ``LOAD DATA LOCAL INFILE``, MySQL's fastest way in for many rows.

A rebuild writes a million rows. As a multi-row INSERT, the driver escapes every value in
Python and the server parses one huge statement; as a tab-separated file, formatting is a
few string operations per value and the server loads it without parsing SQL: about half
the CPU on both sides (bench/README.md). The server must allow it (``local_infile``, on by
default in MariaDB, off in MySQL 8) and so must the client, which only the replay's own
engine does (see :func:`coffeeshop.api.db.make_engine`); otherwise callers use INSERT.

``LOAD DATA LOCAL`` turns duplicate keys and conversion problems into warnings (the server
cannot stop a file mid-transfer), so :func:`load` counts what was loaded and checks the
warnings, and fails exactly where a plain INSERT would have.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Connection, DateTime, Integer, String, Table
from sqlalchemy.types import TypeEngine

from coffeeshop.events import jsonio

MIN_ROWS = 200  # below this a multi-row INSERT costs less than writing a file
# Files go to memory where there is a tmpfs; NamedTemporaryFile makes them private (0600).
_SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # noqa: S108
_NULL = "\\N"

Format = Callable[[Any], str]


class BulkLoadError(RuntimeError):
    """The server skipped or changed rows of a bulk load (duplicate key, bad value)."""


def allowed(conn: Connection) -> bool:
    """Whether both ends of this connection accept ``LOAD DATA LOCAL`` (asked once per
    pooled connection)."""
    if conn.dialect.name not in ("mysql", "mariadb"):
        return False
    info = conn.connection.info
    if "local_infile" not in info:
        client = bool(getattr(conn.connection.driver_connection, "_local_infile", False))
        info["local_infile"] = client and bool(
            conn.exec_driver_sql("SELECT @@local_infile").scalar()
        )
    return bool(info["local_infile"])


def load(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (every column of ``table`` present) in one ``LOAD DATA LOCAL``."""
    columns = [column.name for column in table.columns]
    pairs = [(column.name, _format_of(column.type)) for column in table.columns]
    text = "".join("\t".join([form(row[name]) for name, form in pairs]) + "\n" for row in rows)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", newline="\n", suffix=".tsv", prefix="coffeeshop-", dir=_SCRATCH
    ) as file:
        file.write(text)
        file.flush()
        quoted = ", ".join(f"`{name}`" for name in columns)
        result = conn.exec_driver_sql(
            f"LOAD DATA LOCAL INFILE %s INTO TABLE `{table.name}` CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
            f"({quoted})",
            (file.name,),
        )
    loaded = result.rowcount
    warnings = conn.exec_driver_sql("SHOW WARNINGS LIMIT 3").all()
    if loaded != len(rows) or warnings:
        details = "; ".join(str(row[2]) for row in warnings) or "rows skipped"
        raise BulkLoadError(f"{table.name}: loaded {loaded} of {len(rows)} rows ({details})")


def _format_of(kind: TypeEngine[Any]) -> Format:
    """The formatter for a column type: the common cases first, without the general chain."""
    if isinstance(kind, JSON):
        return _json_field
    if isinstance(kind, String):
        return _text_field
    if isinstance(kind, Integer):
        return _int_field
    if isinstance(kind, DateTime):
        return _datetime_field
    return field


def _text_field(value: Any) -> str:
    if value.__class__ is str:
        if "\\" in value or "\t" in value or "\n" in value:
            return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        return value
    return field(value)


def _int_field(value: Any) -> str:
    return str(value) if value.__class__ is int else field(value)


def _datetime_field(value: Any) -> str:
    if value.__class__ is datetime and value.tzinfo is None:
        return value.isoformat(" ")
    return field(value)


def field(value: Any) -> str:
    """One value as LOAD DATA reads it with ESCAPED BY '\\\\'."""
    if value is None:
        return _NULL
    if isinstance(value, str):
        if "\\" in value or "\t" in value or "\n" in value:
            return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError(f"aware datetime {value!r}: read tables store naive UTC")
        return value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    raise TypeError(f"cannot bulk-load a {type(value).__name__}")


def _json_field(value: Any) -> str:
    """A JSON column: always a document (``None`` is JSON null, as SQLAlchemy writes it)."""
    return field(jsonio.dumps(value))
