"""The operator commands as an operator runs them: replay, verify, projections, /metrics."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from coffeeshop.api import cli
from coffeeshop.api.app import create_app
from coffeeshop.api.container import Container, build_container
from coffeeshop.api.progress import ProgressLine
from coffeeshop.events.envelope import StreamRef
from coffeeshop.events.orders import OrderItemAdded, OrderLine
from coffeeshop.events.partition import Partition
from coffeeshop.projections import shadow, tracking
from coffeeshop.projections.orders import orders
from tests.conftest import TEST_SECRET, make_settings
from tests.integration.rebuild_helpers import (
    leftover_copies,
    project_live,
    projections,
    snapshot,
    trade,
)

BOTH = pytest.mark.parametrize("own_database_url", ["mysql", "sqlite"], indirect=True)


@pytest.fixture
def shop(own_database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[Container]:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv("DATABASE_URL", own_database_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    container = build_container(make_settings(database_url=own_database_url, redis_url=None))
    trade(container, orders=15, seed=21)
    project_live(container)
    yield container
    container.close()


@BOTH
def test_replay_all_rebuilds_swaps_and_says_so(
    shop: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["replay", "--all", "--jobs", "2"]) == 0

    out = capsys.readouterr().out
    for name in ("orders", "order_history", "menu", "daily_sales"):
        assert f"{name}: rebuilt from" in out
    assert "replayed" in out
    assert "events/s" in out
    assert leftover_copies(shop.engine) == []
    assert cli.main(["verify"]) == 0


def test_a_failing_job_process_fails_the_replay_and_swaps_nothing(
    shop: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    """The second part runs in a child process; an event its orders handler cannot apply
    (an item added to an order the store never saw placed) must fail the whole replay."""
    second = Partition(1, 2)
    restaurant = next(r for r in iter(lambda: str(uuid.uuid4()), None) if second.holds(r))
    trade(shop, orders=5, seed=22, restaurant_id=restaurant)
    project_live(shop)
    live = snapshot(shop.engine, projections(shop))
    line = OrderLine(
        line_id="l-1", menu_item_id="m-1", name="Ghost", unit_price_cents=1, quantity=1
    )
    shop.store.append(
        StreamRef(restaurant, "order", str(uuid.uuid4())), 0, [OrderItemAdded(line=line)]
    )

    assert cli.main(["replay", "--all", "--jobs", "2"]) == 1

    err = capsys.readouterr().err
    assert "part 2/2" in err
    assert "OrderItemAdded" in err
    assert "nothing was swapped in" in err
    assert snapshot(shop.engine, projections(shop)) == live
    with shop.engine.connect() as conn:
        (progress,) = [r for r in tracking.rebuilds(conn) if r.projection == "orders"]
    assert progress.part == "all"  # both parts' rows kept: the next run resumes


@BOTH
def test_verify_exits_1_and_names_the_drift(
    shop: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    with shop.engine.begin() as conn:
        conn.execute(update(orders).values(customer_name="Someone Else"))

    assert cli.main(["verify", "orders", "menu", "--quiet"]) == 1

    captured = capsys.readouterr()
    assert "orders: DRIFT in 15 rows" in captured.out
    assert "customer_name: live='Someone Else'" in captured.out
    assert "menu: clean" in captured.out
    assert "coffeeshop replay orders" in captured.err

    assert cli.main(["replay", "orders", "--quiet"]) == 0
    assert cli.main(["verify", "orders", "--quiet"]) == 0


@BOTH
def test_replay_of_one_restaurant_in_place(
    shop: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    restaurant = trade(shop, orders=4, seed=22)
    project_live(shop)
    with shop.engine.begin() as conn:
        conn.execute(
            update(orders).where(orders.c.restaurant_id == restaurant).values(total_cents=0)
        )

    assert cli.main(["replay", "orders", "--restaurant", restaurant]) == 0

    assert f"orders: restaurant {restaurant} rebuilt in place" in capsys.readouterr().out
    assert cli.main(["verify", "orders", "--quiet"]) == 0


def test_projections_table_shows_state_lag_rebuild_and_verify(
    shop: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    trade(shop, orders=2, seed=23)  # not projected yet: lag
    with shop.engine.begin() as conn:
        tracking.start_rebuild(conn, "daily_sales", "replay", {"1/1": 100}, shop.clock())
        tracking.set_state(conn, "orders", "failed", shop.clock(), "projection orders failed at X")
        tracking.set_state(conn, "menu", "live", shop.clock())
    assert cli.main(["verify", "menu", "--quiet"]) == 0
    capsys.readouterr()

    assert cli.main(["projections"]) == 0

    out = capsys.readouterr().out
    table = out.split("\n\n")[0].splitlines()
    lines = {line.split()[0]: line for line in table}
    assert lines["projection"].split()[:5] == ["projection", "state", "checkpoint", "head", "lag"]
    assert lines["orders"].split()[1] == "failed"
    assert lines["menu"].split()[1] == "live"
    assert "clean" in lines["menu"]
    assert lines["daily_sales"].split()[1:3] == ["rebuilding", "0%"]
    assert "never" in lines["order_history"]
    assert int(lines["order_history"].split()[4]) > 0  # lag in events
    assert "orders failed: projection orders failed at X" in out
    assert "daily_sales rebuild: 0/100 events" in out


def test_a_second_replay_is_refused_while_one_runs(shop: Container) -> None:
    with shadow.exclusive(shop.engine, "rebuild"), pytest.raises(SystemExit, match="another"):
        cli.main(["replay", "--all"])


def test_replay_needs_names_or_all_and_knows_the_names(shop: Container) -> None:
    with pytest.raises(SystemExit, match="--all"):
        cli.main(["replay"])
    with pytest.raises(SystemExit, match="known: orders, order_history, menu, daily_sales"):
        cli.main(["replay", "nope"])
    with pytest.raises(SystemExit):
        cli.main(["replay", "--all", "--batch-size", "0"])
    with pytest.raises(SystemExit, match="restaurant nope has no events"):
        cli.main(["replay", "orders", "--restaurant", "nope"])


def test_metrics_expose_projection_state_lag_and_verify_drift(shop: Container) -> None:
    with shop.engine.begin() as conn:
        conn.execute(update(orders).values(total_cents=1))
    assert cli.main(["verify", "orders", "--quiet"]) == 1
    trade(shop, orders=1, seed=24)

    with TestClient(create_app(shop.settings, shop)) as client:
        body = client.get("/metrics").text

    assert 'coffeeshop_projection_verify_drift_rows{projection="orders"} 15.0' in body
    assert 'coffeeshop_projection_verify_timestamp_seconds{projection="orders"}' in body
    states = [
        line
        for line in body.splitlines()
        if line.startswith('coffeeshop_projection_state{projection="orders"')
    ]
    assert len(states) == 4
    assert sum(float(line.split()[-1]) for line in states) == 1.0
    lag = [
        line for line in body.splitlines() if line.startswith("coffeeshop_projection_lag_events")
    ]
    assert any(not line.endswith(" 0.0") for line in lag)


# -- pieces --------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_elsewhere() -> None:
    terminal = _Terminal()
    bar = ProgressLine("replay", terminal, tty_interval_s=0)
    bar(0, 1000)
    bar(500, 1000)
    bar(1000, 1000)
    bar.close()
    drawn = terminal.getvalue()
    assert "\r" in drawn
    assert "replay [##############..............]  50%  500/1,000 events" in drawn
    assert "ETA" in drawn
    assert drawn.endswith("\n")

    plain = io.StringIO()
    lines = ProgressLine("replay", plain, plain_interval_s=0)
    lines(250, 1000)
    lines(1000, 1000)
    assert plain.getvalue().splitlines()[0].startswith("replay: 25% 250/1,000 events")
    assert "\r" not in plain.getvalue()

    quiet = io.StringIO()
    ProgressLine("replay", quiet, quiet=True)(5, 10)
    assert quiet.getvalue() == ""
