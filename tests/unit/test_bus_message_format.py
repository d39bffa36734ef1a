"""The relay writes FastStream's message format itself; FastStream must read it back."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson
from faststream.redis.message import bDATA_KEY
from faststream.redis.parser.binary import BinaryMessageFormatV1

from coffeeshop.api.runtime import DecodedEvents
from coffeeshop.events.redis_bus import decode_batch, message_prefix, parse_batch


def test_a_published_body_is_what_fast_streams_parser_returns() -> None:
    body = orjson.dumps({"type": "OrderPlaced", "data": {"name": "Zoë's flat white"}})
    prefix = asyncio.run(message_prefix())
    parsed, headers = BinaryMessageFormatV1.parse(prefix + body)
    assert parsed == body
    assert "content-type" not in headers  # bytes, handed to subscribers as they are


def test_the_batch_parser_hands_the_entries_through_untouched() -> None:
    prefix = asyncio.run(message_prefix())
    bodies = [orjson.dumps({"seq": n}) for n in range(3)]
    raw = {
        "data": [{bDATA_KEY: prefix + b} for b in bodies],
        "message_ids": [b"1-0", b"1-1", b"1-2"],
    }
    seen: list[Mapping[str, Any]] = []

    async def original(message: Mapping[str, Any]) -> object:
        seen.append(message)

        class Parsed:
            raw_message = message

        return Parsed()

    parsed = asyncio.run(parse_batch(raw, original))
    assert seen[0]["data"] == []  # FastStream's parser never decodes the entries
    assert seen[0]["message_ids"] == raw["message_ids"]  # it still acks every one
    assert asyncio.run(decode_batch(parsed)) == bodies


def _message(seq: int) -> bytes:
    return orjson.dumps(
        {
            "id": seq,
            "event_id": f"e{seq}",
            "restaurant_id": "r",
            "seq": seq,
            "stream_type": "order",
            "stream_id": "o",
            "version": seq,
            "type": "SomethingNew",
            "schema_version": 1,
            "data": {"n": seq},
            "metadata": {},
            "recorded_at": "2026-12-04T10:00:00+00:00",
        }
    )


def test_every_consumer_group_of_a_process_shares_one_decoded_event() -> None:
    decoded = DecodedEvents(capacity=2)
    first = decoded(_message(1))
    assert decoded(_message(1)) is first  # the next group's copy of the same message
    assert decoded(_message(2)) is not first
    assert decoded(_message(2)).seq == 2
    decoded(_message(3))  # full: starts over rather than grow
    assert decoded(_message(1)) is not first
    assert decoded(_message(1)) == first
