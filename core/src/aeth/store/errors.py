"""What can go wrong with the store, in words a user can act on (all :class:`~aeth.errors.AethError`)."""

from __future__ import annotations

from aeth.errors import AethError


class StoreError(AethError):
    """The database cannot be opened or used; the message says which database and how to fix it."""


class StoreUnavailable(StoreError):
    """The database is unreachable or busy (PostgreSQL down, a SQLite file locked or unwritable)."""


class UnknownInteraction(StoreError):
    """No interaction has that id (or an id prefix matches none, or several)."""


class UnknownKey(StoreError):
    """No API key has that name or id."""


class KeyNameTaken(StoreError):
    """An active API key already has that name."""
