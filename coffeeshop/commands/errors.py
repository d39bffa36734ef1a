"""Domain errors raised by deciders and handlers; the API maps them to HTTP statuses."""


class DomainError(Exception):
    """A business rule refused the command."""


class NotFound(DomainError):
    """The aggregate or a referenced entity does not exist in the caller's restaurant."""


class InvalidState(DomainError):
    """The command does not fit the aggregate's current state (e.g. paying a cancelled order)."""


class RuleViolation(DomainError):
    """The command's content breaks a rule (e.g. a payment that does not match the total)."""


class VersionMismatch(DomainError):
    """The caller's If-Match version is not the aggregate's current version."""

    def __init__(self, expected: int, current: int) -> None:
        super().__init__(f"the resource is at version {current}, not {expected}")
        self.expected = expected
        self.current = current
