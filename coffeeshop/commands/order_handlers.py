"""Order use cases. Menu items are read from their own streams, never from a projection."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from coffeeshop.commands import menu_item, order
from coffeeshop.commands.errors import NotFound
from coffeeshop.commands.handling import (
    CommandContext,
    CommandExecutor,
    CommandResult,
    Decision,
    Loaded,
    Streams,
    fold,
    stream,
)
from coffeeshop.commands.models import (
    CancellationCreate,
    OrderCreate,
    OrderItemCreate,
    PaymentCreate,
)
from coffeeshop.events.envelope import StreamWrite
from coffeeshop.events.menu import MENU_ITEM_STREAM
from coffeeshop.events.orders import ORDER_STREAM
from coffeeshop.events.registry import DomainEvent

TableExists = Callable[[str, str], bool]
"""(restaurant_id, table_id) -> whether that dining table exists in that restaurant."""


class OrderCommands:
    def __init__(self, executor: CommandExecutor, table_exists: TableExists) -> None:
        self._executor = executor
        self._table_exists = table_exists

    def place(self, ctx: CommandContext, body: OrderCreate) -> CommandResult:
        order_id = str(uuid.uuid4())
        table_id = str(body.table_id) if body.table_id else None
        if table_id is not None and not self._table_exists(ctx.restaurant_id, table_id):
            raise NotFound(f"table {table_id} not found")
        line_ids = [str(uuid.uuid4()) for _ in body.items]

        def attempt() -> Decision:
            items = self._menu_items(
                self._executor.streams(ctx, {str(i.menu_item_id) for i in body.items})
            )
            lines = tuple(
                self._line(line_id, request, items)
                for line_id, request in zip(line_ids, body.items, strict=True)
            )
            command = order.PlaceOrder(order_id, lines, table_id, body.customer_name, body.notes)
            events = order.decide(command, order.Order(), self._executor.clock())
            # Unchanged menu items are part of the decision: a price change racing this order
            # makes the append conflict and the order is decided again with the new price.
            checks = [
                StreamWrite(stream(ctx, MENU_ITEM_STREAM, item_id), loaded.version, ())
                for item_id, loaded in items.items()
            ]
            write = StreamWrite(stream(ctx, ORDER_STREAM, order_id), 0, tuple(events))
            return Decision(order_id, write, checks)

        return self._executor.run(ctx, attempt, creates=True)

    def add_item(self, ctx: CommandContext, order_id: str, body: OrderItemCreate) -> CommandResult:
        line_id = str(uuid.uuid4())
        item_id = str(body.menu_item_id)

        def attempt() -> Decision:
            streams = self._executor.streams(ctx, [order_id, item_id])
            loaded = fold(streams[order_id], order.Order(), order.evolve)
            items = self._menu_items({item_id: streams[item_id]})
            command = order.AddItem(self._line(line_id, body, items))
            events = order.decide(command, loaded.state, self._executor.clock())
            checks = [
                StreamWrite(stream(ctx, MENU_ITEM_STREAM, item_id), items[item_id].version, ())
            ]
            return Decision(
                order_id,
                self._write(ctx, order_id, loaded, events),
                checks,
                extra={"line_id": line_id},
            )

        return self._executor.run(ctx, attempt)

    def remove_item(self, ctx: CommandContext, order_id: str, line_id: str) -> CommandResult:
        return self._on_order(ctx, order_id, order.RemoveItem(line_id))

    def start(self, ctx: CommandContext, order_id: str) -> CommandResult:
        return self._on_order(ctx, order_id, order.StartPreparation())

    def mark_ready(self, ctx: CommandContext, order_id: str) -> CommandResult:
        return self._on_order(ctx, order_id, order.MarkReady())

    def serve(self, ctx: CommandContext, order_id: str) -> CommandResult:
        return self._on_order(ctx, order_id, order.Serve())

    def pay(self, ctx: CommandContext, order_id: str, body: PaymentCreate) -> CommandResult:
        command = order.Pay(body.method, body.amount_cents, body.tip_cents)
        return self._on_order(ctx, order_id, command)

    def cancel(self, ctx: CommandContext, order_id: str, body: CancellationCreate) -> CommandResult:
        return self._on_order(ctx, order_id, order.Cancel(body.reason))

    def total_of(self, ctx: CommandContext, order_id: str) -> int:
        """The order's current total, from its stream (what a POS shows before payment)."""
        return self._order(ctx, order_id).state.total_cents

    # -- helpers ---------------------------------------------------------------------------

    def _on_order(
        self, ctx: CommandContext, order_id: str, command: order.OrderCommand
    ) -> CommandResult:
        def attempt() -> Decision:
            loaded = self._order(ctx, order_id)
            events = order.decide(command, loaded.state, self._executor.clock())
            return Decision(
                order_id, self._write(ctx, order_id, loaded, events), current_seq=loaded.last_seq
            )

        name = re.sub(r"(?<!^)(?=[A-Z])", "_", type(command).__name__).lower()
        return self._executor.run(ctx, attempt, command=f"OrderCommands.{name}")

    def _order(self, ctx: CommandContext, order_id: str) -> Loaded[order.Order]:
        return self._executor.load(ctx, order_id, order.Order(), order.evolve)

    def _write(
        self,
        ctx: CommandContext,
        order_id: str,
        loaded: Loaded[order.Order],
        events: list[DomainEvent],
    ) -> StreamWrite:
        return StreamWrite(
            stream(ctx, ORDER_STREAM, order_id), self._executor.expect(ctx, loaded), tuple(events)
        )

    @staticmethod
    def _menu_items(streams: Streams) -> dict[str, Loaded[menu_item.MenuItem]]:
        return {
            item_id: fold(recorded, menu_item.MenuItem(), menu_item.evolve)
            for item_id, recorded in sorted(streams.items())
        }

    @staticmethod
    def _line(
        line_id: str,
        request: OrderItemCreate,
        items: dict[str, Loaded[menu_item.MenuItem]],
    ) -> order.LineRequest:
        item_id = str(request.menu_item_id)
        state = items[item_id].state
        if not state.exists:
            raise NotFound(f"menu item {item_id} not found")
        return order.LineRequest(line_id, state, request.quantity, request.notes)
