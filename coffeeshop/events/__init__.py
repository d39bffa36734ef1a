"""Write-side storage: event classes, the event store, the outbox and the bus."""

# Importing the event modules registers every event class with the registry.
from coffeeshop.events import menu, orders

__all__ = ["menu", "orders"]
