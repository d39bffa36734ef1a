"""Menu use cases: categories and menu items, each change checked against its aggregates."""

from __future__ import annotations

import uuid

from coffeeshop.commands import category, menu_item
from coffeeshop.commands.handling import (
    CommandContext,
    CommandExecutor,
    CommandResult,
    Decision,
    Loaded,
    stream,
)
from coffeeshop.commands.models import (
    AvailabilityUpdate,
    CategoryCreate,
    CategoryUpdate,
    MenuItemCreate,
    MenuItemUpdate,
)
from coffeeshop.events.envelope import StreamWrite
from coffeeshop.events.menu import CATEGORY_STREAM, MENU_ITEM_STREAM
from coffeeshop.events.registry import DomainEvent


class MenuCommands:
    def __init__(self, executor: CommandExecutor) -> None:
        self._executor = executor

    def create_category(self, ctx: CommandContext, body: CategoryCreate) -> CommandResult:
        category_id = str(uuid.uuid4())
        command = category.CreateCategory(category_id, body.name, body.sort_order)

        def attempt() -> Decision:
            events = category.decide(command, category.Category())
            write = StreamWrite(stream(ctx, CATEGORY_STREAM, category_id), 0, tuple(events))
            return Decision(category_id, write)

        return self._executor.run(ctx, attempt, creates=True)

    def update_category(
        self, ctx: CommandContext, category_id: str, body: CategoryUpdate
    ) -> CommandResult:
        command = category.UpdateCategory(name=body.name, sort_order=body.sort_order)
        return self._on_category(ctx, category_id, command)

    def remove_category(self, ctx: CommandContext, category_id: str) -> CommandResult:
        return self._on_category(ctx, category_id, category.RemoveCategory())

    def _on_category(
        self, ctx: CommandContext, category_id: str, command: category.CategoryCommand
    ) -> CommandResult:
        def attempt() -> Decision:
            loaded = self._category(ctx, category_id)
            events = category.decide(command, loaded.state)
            write = StreamWrite(
                stream(ctx, CATEGORY_STREAM, category_id),
                self._executor.expect(ctx, loaded),
                tuple(events),
            )
            return Decision(category_id, write, current_seq=loaded.last_seq)

        return self._executor.run(ctx, attempt)

    def add_item(self, ctx: CommandContext, body: MenuItemCreate) -> CommandResult:
        item_id, category_id = str(uuid.uuid4()), str(body.category_id)
        command = menu_item.AddMenuItem(
            item_id, category_id, body.name, body.description, body.price_cents, body.is_available
        )

        def attempt() -> Decision:
            owner = self._category(ctx, category_id)
            attach = category.decide(category.AttachItem(item_id), owner.state)
            events = menu_item.decide(command, menu_item.MenuItem())
            return Decision(
                item_id,
                StreamWrite(stream(ctx, MENU_ITEM_STREAM, item_id), 0, tuple(events)),
                [
                    StreamWrite(
                        stream(ctx, CATEGORY_STREAM, category_id), owner.version, tuple(attach)
                    )
                ],
            )

        return self._executor.run(ctx, attempt, creates=True)

    def update_item(self, ctx: CommandContext, item_id: str, body: MenuItemUpdate) -> CommandResult:
        command = menu_item.UpdateMenuItem(
            name=body.name,
            description=body.description,
            price_cents=body.price_cents,
            category_id=str(body.category_id) if body.category_id else None,
        )

        def attempt() -> Decision:
            loaded = self._item(ctx, item_id)
            events = menu_item.decide(command, loaded.state)
            others: list[StreamWrite] = []
            old, new = loaded.state.category_id, command.category_id
            if new is not None and new != old:
                others = [
                    self._membership(ctx, new, category.AttachItem(item_id)),
                    self._membership(ctx, old, category.DetachItem(item_id)),
                ]
            return Decision(
                item_id,
                self._item_write(ctx, item_id, loaded, events),
                others,
                current_seq=loaded.last_seq,
            )

        return self._executor.run(ctx, attempt)

    def set_availability(
        self, ctx: CommandContext, item_id: str, body: AvailabilityUpdate
    ) -> CommandResult:
        def attempt() -> Decision:
            loaded = self._item(ctx, item_id)
            events = menu_item.decide(menu_item.SetAvailability(body.is_available), loaded.state)
            return Decision(
                item_id, self._item_write(ctx, item_id, loaded, events), current_seq=loaded.last_seq
            )

        return self._executor.run(ctx, attempt)

    def archive_item(self, ctx: CommandContext, item_id: str) -> CommandResult:
        def attempt() -> Decision:
            loaded = self._item(ctx, item_id)
            events = menu_item.decide(menu_item.ArchiveMenuItem(), loaded.state)
            detach = self._membership(ctx, loaded.state.category_id, category.DetachItem(item_id))
            return Decision(
                item_id,
                self._item_write(ctx, item_id, loaded, events),
                [detach],
                current_seq=loaded.last_seq,
            )

        return self._executor.run(ctx, attempt)

    # -- helpers ---------------------------------------------------------------------------

    def _category(self, ctx: CommandContext, category_id: str) -> Loaded[category.Category]:
        return self._executor.load(ctx, category_id, category.Category(), category.evolve)

    def _item(self, ctx: CommandContext, item_id: str) -> Loaded[menu_item.MenuItem]:
        return self._executor.load(ctx, item_id, menu_item.MenuItem(), menu_item.evolve)

    def _item_write(
        self,
        ctx: CommandContext,
        item_id: str,
        loaded: Loaded[menu_item.MenuItem],
        events: list[DomainEvent],
    ) -> StreamWrite:
        return StreamWrite(
            stream(ctx, MENU_ITEM_STREAM, item_id),
            self._executor.expect(ctx, loaded),
            tuple(events),
        )

    def _membership(
        self, ctx: CommandContext, category_id: str, command: category.CategoryCommand
    ) -> StreamWrite:
        owner = self._category(ctx, category_id)
        events = category.decide(command, owner.state)
        return StreamWrite(stream(ctx, CATEGORY_STREAM, category_id), owner.version, tuple(events))
