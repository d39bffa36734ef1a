"""Partitions of restaurants for parallel rebuild jobs."""

from __future__ import annotations

import gc
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coffeeshop.events.partition import WHOLE, Partition, crc32
from coffeeshop.projections.rebuild import _collector_paused


@given(st.text(min_size=1, max_size=40), st.integers(min_value=1, max_value=16))
def test_every_restaurant_is_in_exactly_one_part(restaurant_id: str, count: int) -> None:
    holders = [part for part in Partition.all(count) if part.holds(restaurant_id)]
    assert len(holders) == 1
    assert holders[0].index == zlib.crc32(restaurant_id.encode()) % count


def test_the_whole_holds_everything_and_parts_are_named_for_people() -> None:
    assert WHOLE.whole
    assert WHOLE.holds("anything")
    assert [str(part) for part in Partition.all(3)] == ["1/3", "2/3", "3/3"]
    assert crc32("a") == 3904355907  # MySQL: SELECT CRC32('a')


@pytest.mark.parametrize(("index", "count"), [(2, 2), (-1, 3), (0, 0)])
def test_a_part_outside_its_count_is_refused(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        Partition(index, count)


def test_the_collector_pauses_for_a_pass_and_comes_back() -> None:
    assert gc.isenabled()
    with _collector_paused(every=2) as batch_done:
        assert not gc.isenabled()
        young = [[] for _ in range(2000)]  # tracked containers, counted as young
        batch_done()
        assert gc.get_count()[0] >= 2000  # not collected after the first batch
        batch_done()
        assert gc.get_count()[0] < 100  # collected after the second
        assert len(young) == 2000
    assert gc.isenabled()
