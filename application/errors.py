"""Errors of the application layer: what the store's failures mean to a caller."""

from __future__ import annotations

from creditledger.domain.errors import LedgerError


class StoreUnavailableError(LedgerError):
    """The event store could not be read or written; nothing was applied. Safe to retry."""

    code = "store_unavailable"
    title = "Store unavailable"
