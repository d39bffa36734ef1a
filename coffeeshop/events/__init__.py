"""Write-side storage: event classes, the event store, the outbox and the bus."""
