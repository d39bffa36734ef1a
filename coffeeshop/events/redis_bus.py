"""Redis Streams through FastStream: the production bus. Broker-specific code lives here only.

One stream per partition (``coffeeshop.events.N``), trimmed approximately to ``maxlen``.
Each projection reads every partition through its own consumer group.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson
from faststream.redis.message import DATA_KEY, bDATA_KEY
from faststream.redis.parser.binary import BinaryMessageFormatV1
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ResponseError

from coffeeshop.events.bus import partition_of, stream_name, to_message
from coffeeshop.events.envelope import RecordedEvent

DEFAULT_MAXLEN = 100_000


def connect_redis(url: str) -> Redis:
    """A client for the long-running processes (relay, projector, worker, scheduler).

    redis-py's asyncio client does not retry by default: after Redis restarts, the first
    command on each pooled connection fails with "Connection closed by server" although
    Redis is back, and the caller loses a whole retry interval. This one reconnects and
    retries a connection error a few times within about a second.
    """
    return Redis.from_url(url, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 4))


class RedisStreamsPublisher:
    """XADDs events in FastStream's own message format, so FastStream subscribers read them.

    The events of one call go out in one pipelined round trip, one XADD each, without
    FastStream's per-message publish path (its middleware chain and encoder cost about
    60 µs a message, several times the XADD itself). The body is the event envelope as
    JSON bytes, sent without a content type: subscribers get those bytes as they are.
    """

    def __init__(self, redis: Redis, partitions: int, maxlen: int = DEFAULT_MAXLEN) -> None:
        self._redis = redis
        self._partitions = partitions
        self._maxlen = maxlen
        self._prefix: bytes | None = None

    async def publish(self, events: Sequence[RecordedEvent]) -> None:
        prefix = self._prefix if self._prefix is not None else await self._frame_prefix()
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.xadd(
                    stream_name(partition_of(event.restaurant_id, self._partitions)),
                    {DATA_KEY: prefix + orjson.dumps(to_message(event))},
                    maxlen=self._maxlen,
                )
            await pipe.execute()

    async def _frame_prefix(self) -> bytes:
        self._prefix = await message_prefix()
        return self._prefix


async def message_prefix() -> bytes:
    """What FastStream writes before a body: its format header and our (constant) headers.

    The binary format puts the body last, so encoding an empty body yields the prefix of
    every message. A format where that no longer holds fails here, loudly, at the first
    publish rather than with unreadable messages.
    """
    empty = await BinaryMessageFormatV1.encode(
        message=b"", reply_to=None, headers=None, correlation_id=""
    )
    probe = b'{"probe":1}'
    encoded = await BinaryMessageFormatV1.encode(
        message=probe, reply_to=None, headers=None, correlation_id=""
    )
    if encoded != empty + probe or BinaryMessageFormatV1.parse(encoded)[0] != probe:
        raise RuntimeError("FastStream's Redis message format is no longer header + body")
    return empty


async def ensure_groups(redis: Redis, groups: Sequence[str], partitions: int) -> int:
    """Create each consumer group on each partition stream if missing (e.g. after a flush);
    returns how many had to be created.

    A new group starts at "$": whatever it missed is replayed from the store by catch-up.
    """
    created = 0
    for partition in range(partitions):
        for group in groups:
            try:
                await redis.xgroup_create(stream_name(partition), group, id="$", mkstream=True)
                created += 1
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
    return created


async def forget_idle_consumers(
    redis: Redis, groups: Sequence[str], partitions: int, idle_ms: int
) -> int:
    """Remove consumers that have not read for ``idle_ms`` (projector processes that died),
    with their pending entries; returns how many entries were dropped.

    Their messages are not lost to the read model: the store-based catch-up applies every
    event a projection has not applied, whoever was handed it on the bus. Without this, each
    crash would leave its pending list in Redis forever.
    """
    dropped = 0
    for partition in range(partitions):
        stream = stream_name(partition)
        for group in groups:
            try:
                consumers = await redis.xinfo_consumers(stream, group)
            except ResponseError:
                continue  # no such group (yet): nothing to forget
            for consumer in consumers:
                if int(consumer["idle"]) >= idle_ms:
                    dropped += int(await redis.xgroup_delconsumer(stream, group, consumer["name"]))
    return dropped


_ENTRIES = "coffeeshop_entries"


async def parse_batch(
    message: Mapping[str, Any], original: Callable[[Mapping[str, Any]], Awaitable[Any]]
) -> Any:
    """A batch subscriber's parser that leaves the bodies alone.

    FastStream's own JSON-decodes every entry, encodes the whole batch as JSON again and
    its decoder decodes that once more: three passes over every event, in every consumer
    group, before a handler sees it. Here its parser builds the message (which acks the
    batch's ids) from the batch without its entries, and ``decode_batch`` takes each body
    straight from the entries.
    """
    return await original({**message, "data": [], _ENTRIES: message["data"]})


async def decode_batch(message: Any) -> list[bytes]:
    """The bodies of a batch parsed by ``parse_batch``, as the bytes that were published."""
    return [
        BinaryMessageFormatV1.parse(entry[bDATA_KEY])[0] for entry in message.raw_message[_ENTRIES]
    ]


def decode_body(raw: bytes | str | dict[str, object]) -> dict[str, object]:
    if isinstance(raw, dict):
        return raw
    decoded: dict[str, object] = orjson.loads(raw)
    return decoded
