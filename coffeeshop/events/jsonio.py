"""How JSON columns are written and read: orjson, since a replay handles millions of them."""

from __future__ import annotations

from typing import Any

import orjson

loads = orjson.loads


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
