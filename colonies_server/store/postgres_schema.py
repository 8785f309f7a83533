"""PostgreSQL schema: versioned migrations, applied under a transaction-level advisory lock.

Migration 1 is the SQLite schema (store/schema.py) with its types widened for PostgreSQL, so both
stores keep one table layout: INTEGER columns hold nanosecond times (BIGINT here), documents are
BYTEA, and `instr()` exists so the queries the two stores share keep SQLite's spelling.
"""

from __future__ import annotations

import re
from typing import Any

from .schema import SCHEMA

__all__ = ["MIGRATIONS", "MIGRATION_LOCK", "migrate"]

# pg_advisory_xact_lock key: "colonyfaas migrate" folded into a bigint; any constant works as long as
# every replica uses the same one.
MIGRATION_LOCK = 0x636F6C6F6E79_01


def _from_sqlite(schema: str) -> str:
    out = schema.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
    out = re.sub(r"\bINTEGER\b", "BIGINT", out)
    return re.sub(r"\bBLOB\b", "BYTEA", out)


MIGRATIONS: list[str] = [
    _from_sqlite(SCHEMA) + """;
CREATE OR REPLACE FUNCTION instr(haystack TEXT, needle TEXT) RETURNS INTEGER
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT strpos(haystack, needle)';
""",
]


def migrate(conn: Any) -> int:
    """Bring the database up to the newest version; safe when several replicas start at once.

    `conn` is a psycopg connection in autocommit mode. Returns the schema version after migrating.
    """
    with conn.transaction():
        # Serialises concurrent migrators; released at COMMIT. The second one finds the work done.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                     "applied TIMESTAMPTZ NOT NULL DEFAULT now())")
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        current = int(row[0])
        for version, ddl in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            for stmt in ddl.split(";\n"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
        conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', %s) ON CONFLICT (key) DO UPDATE "
                     "SET value = excluded.value", (str(len(MIGRATIONS)),))
    return len(MIGRATIONS)
