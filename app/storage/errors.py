"""Storage errors, each carrying a reason a person can act on."""

from __future__ import annotations


class StorageError(Exception):
    """Base class of the storage package's own errors."""


class DatabaseUnavailableError(StorageError):
    """The database cannot be reached or migrated; the message names where and why."""


class CallNotFoundError(StorageError, KeyError):
    """No call with this id was started (``KeyError`` so ``except KeyError`` works too)."""

    def __init__(self, call_id: str) -> None:
        super().__init__(call_id)
        self.call_id = call_id

    def __str__(self) -> str:
        return f"no call with id {self.call_id!r}"
