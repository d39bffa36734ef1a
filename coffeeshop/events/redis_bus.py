"""Redis Streams through FastStream: the production bus. Broker-specific code lives here only.

One stream per partition (``coffeeshop.events.N``), trimmed approximately to ``maxlen``.
Each projection reads every partition through its own consumer group.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from faststream.redis import RedisBroker
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from coffeeshop.events.bus import partition_of, stream_name, to_message
from coffeeshop.events.envelope import RecordedEvent

DEFAULT_MAXLEN = 100_000


class RedisStreamsPublisher:
    def __init__(
        self, broker: RedisBroker, redis: Redis, partitions: int, maxlen: int = DEFAULT_MAXLEN
    ) -> None:
        self._broker = broker
        self._redis = redis
        self._partitions = partitions
        self._maxlen = maxlen

    async def publish(self, events: Sequence[RecordedEvent]) -> None:
        """XADD every event in one pipelined round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in events:
                await self._broker.publish(
                    to_message(event),
                    stream=stream_name(partition_of(event.restaurant_id, self._partitions)),
                    maxlen=self._maxlen,
                    pipeline=pipe,
                )
            await pipe.execute()


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


def decode_body(raw: bytes | str | dict[str, object]) -> dict[str, object]:
    if isinstance(raw, dict):
        return raw
    decoded: dict[str, object] = json.loads(raw)
    return decoded
