"""PostgreSQL for tests: a fresh database per use (CREATE DATABASE with a random name, dropped after).

COLONYFAAS_TEST_DB picks the server suite's backends: `sqlite`, `postgres` or `both` (default). Without
a PostgreSQL at 127.0.0.1:5432 the PostgreSQL variants skip with a visible reason (a failure under
COLONYFAAS_STRICT=1, i.e. in CI).
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .require import require

__all__ = ["BACKENDS", "PG_ADMIN", "database_url", "fresh_postgres", "postgres_unavailable"]

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
PG_ADMIN = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres"
BACKENDS = {"sqlite": ["sqlite"], "postgres": ["postgres"], "both": ["sqlite", "postgres"]}[
    os.environ.get("COLONYFAAS_TEST_DB", "both")]


@functools.cache
def postgres_unavailable() -> str:
    """'' when PostgreSQL answers at 127.0.0.1:5432, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        return f"cannot connect: {str(e).strip()[:200]}"
    return ""


@contextmanager
def fresh_postgres(prefix: str = "cf_test") -> Iterator[str]:
    """The URL of a new, empty database; the database is dropped (with any open sessions) afterwards."""
    reason = postgres_unavailable()
    require(not reason, f"PostgreSQL at {PG_HOST}:{PG_PORT}", f"start PostgreSQL (trust auth, user {PG_USER}): {reason}")
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def database_url(backend: str, directory: Path) -> Iterator[str]:
    """A fresh database of that backend: an SQLite file in `directory`, or a new PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'colonies.db'}"
        return
    with fresh_postgres() as url:
        yield url
