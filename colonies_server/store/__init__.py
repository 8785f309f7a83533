"""Storage: the Store/Tx protocols and their SQLite implementation."""

from __future__ import annotations

from .base import DatabaseInUse, EventSink, Store, StoreUnavailable, Tx, TxProtocol, open_store

__all__ = ["DatabaseInUse", "EventSink", "Store", "StoreUnavailable", "Tx", "TxProtocol", "open_store"]
