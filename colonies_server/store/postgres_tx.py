"""The Tx contract on one psycopg connection: SqliteTx's queries, adapted in one place, plus row locks.

SQLite runs every write alone (one writer), so a handler's read-modify-write never races. PostgreSQL
runs transactions concurrently at READ COMMITTED; a write transaction therefore takes a row lock
(FOR UPDATE) on the rows it reads in order to update them, which makes it wait for a concurrent
writer of the same row and then read that writer's committed version. Assignment skips rows other
transactions hold (FOR UPDATE SKIP LOCKED), so concurrent assigners never block on, or share, a process.
"""

from __future__ import annotations

from typing import Any, cast

from .base import TxProtocol
from .sqlite_tx import _SEP, SqliteTx, _dumps, _loads

__all__ = ["PostgresTx"]

_SQL: dict[tuple[str, bool], str] = {}

# Queries whose rows a write transaction goes on to update (prefix match on SqliteTx's SQL). Lookups
# of members (executors, users) stay unlocked: every request reads them, few update them.
_LOCKED = (
    "SELECT doc FROM processes WHERE processid=?",
    "SELECT doc FROM processes WHERE assignedexecutorid=? AND state=1",
    "SELECT doc FROM processes WHERE state=1 AND execdeadline",
    "SELECT doc FROM processes WHERE state=0 AND waitdeadline",
    "SELECT doc FROM processgraphs WHERE processgraphid=?",
    "SELECT doc FROM crons WHERE cronid=?",
    "SELECT doc FROM executors WHERE colonyname=? AND name=?",
    "SELECT doc FROM functions WHERE colonyname=?",
)


def adapt(sql: str, lock: bool) -> str:
    """SQLite's spelling → psycopg's: `?` placeholders become `%s`, and row locks are added if asked."""
    key = (sql, lock)
    out = _SQL.get(key)
    if out is None:
        out = sql.replace("%", "%%").replace("?", "%s")
        if lock and sql.startswith(_LOCKED):
            out += " FOR UPDATE"
        _SQL[key] = out
    return out


class _Conn:
    """sqlite3's `execute(sql, args)` over a psycopg connection (the cursor API of both is the same)."""

    __slots__ = ("conn", "lock")

    def __init__(self, conn: Any, lock: bool) -> None:
        self.conn = conn
        self.lock = lock

    def execute(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> Any:
        return self.conn.execute(adapt(sql, self.lock), args)


class PostgresTx(SqliteTx):
    """SqliteTx's methods on PostgreSQL; only what the dialect or concurrency changes is overridden."""

    def __init__(self, conn: Any, write: bool) -> None:
        super().__init__(cast(Any, _Conn(conn, write)))
        self.write = write

    def member(self, colony: str, signer: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        # No cache (another replica may change membership at any time); one round trip for both lookups.
        rows = self.c.execute(
            "(SELECT 0, doc FROM executors WHERE colonyname=? AND executorid=? ORDER BY state=1 DESC LIMIT 1) "
            "UNION ALL (SELECT 1, doc FROM users WHERE colonyname=? AND userid=? LIMIT 1)",
            (colony, signer, colony, signer)).fetchall()
        found = {kind: _loads(doc) for kind, doc in rows}
        return found.get(0), found.get(1)

    def next_seq(self, key: str) -> int:
        row = self.c.execute("INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT (key) DO UPDATE "
                             "SET value = (meta.value::bigint + 1)::text RETURNING value", (key,)).fetchone()
        return int(row[0])

    def add_function(self, f: dict[str, Any]) -> None:
        self.c.execute("INSERT INTO functions (functionid, colonyname, executorname, funcname, doc) VALUES (?,?,?,?,?) "
                       "ON CONFLICT (functionid) DO UPDATE SET colonyname=excluded.colonyname, "
                       "executorname=excluded.executorname, funcname=excluded.funcname, doc=excluded.doc",
                       (f["functionid"], f["colonyname"], f["executorname"], f["funcname"], _dumps(f)))

    def next_assignable(self, colony: str, executortype: str, executorname: str) -> dict[str, Any] | None:
        """As SqliteTx's, but rows that another assigner has locked are skipped, not waited for."""
        return self._one(  # type: ignore[no-any-return]
            "SELECT doc FROM processes WHERE colonyname=? AND executortype=? AND state=0 AND waitforparents=0 "
            "AND (targets IS NULL OR instr(targets, ?) > 0) ORDER BY prioritytime LIMIT 1 FOR UPDATE SKIP LOCKED",
            (colony, executortype, _SEP + executorname + _SEP))


def _conforms(tx: PostgresTx) -> TxProtocol:
    """Type-level check (mypy) that PostgresTx implements the Tx contract."""
    return tx
