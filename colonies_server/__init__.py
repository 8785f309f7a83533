"""colonyfaas' Colonies-protocol server: RPC, pubsub, scheduler and storage (SQLite)."""

from __future__ import annotations

from .app import create_app
from .config import Settings

__all__ = ["Settings", "create_app"]
