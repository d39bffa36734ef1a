"""One order's events as the Order aggregate decides them, for datasets appended straight to
the store: each step some minutes after the one before, exactly as the commands would."""

from __future__ import annotations

from datetime import datetime, timedelta

from coffeeshop.commands import order
from coffeeshop.events.registry import DomainEvent


class OrderLife:
    def __init__(self, at: datetime) -> None:
        self.at = at
        self.state = order.Order()
        self.events: list[DomainEvent] = []

    def step(self, command: order.OrderCommand, minutes: float) -> None:
        """Decide ``command`` ``minutes`` after the previous step and fold its events in."""
        self.at += timedelta(minutes=minutes)
        for event in order.decide(command, self.state, self.at):
            self.state = order.evolve(self.state, event)
            self.events.append(event)
