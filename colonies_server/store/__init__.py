"""Storage: the Store/Tx protocols and their SQLite implementation."""

from __future__ import annotations

from .base import EventSink, Store, Tx, TxProtocol, open_store

__all__ = ["EventSink", "Store", "Tx", "TxProtocol", "open_store"]
