"""Domain-level queries on one SQLite connection (the Tx protocol of store/base.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from .. import jsonx
from ..timeutil import parse_time
from .base import TxProtocol

__all__ = ["SqliteTx"]

_dumps = jsonx.dumps
_loads = jsonx.loads

_PROC_COLS = ("processid, colonyname, state, executortype, prioritytime, waitforparents, targets, "
              "assignedexecutorid, processgraphid, waitdeadline, execdeadline, submission, starttime, "
              "endtime, initiatorname, label, doc")
_INSERT_PROC = f"INSERT INTO processes ({_PROC_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
_UPDATE_PROC = ("UPDATE processes SET colonyname=?, state=?, executortype=?, prioritytime=?, waitforparents=?, "
                "targets=?, assignedexecutorid=?, processgraphid=?, waitdeadline=?, execdeadline=?, "
                "submission=?, starttime=?, endtime=?, initiatorname=?, label=?, doc=? WHERE processid=?")
_SEP = "\x1f"


def _proc_row(p: dict[str, Any]) -> tuple[Any, ...]:
    spec = p["spec"]
    cond = spec["conditions"]
    names = cond.get("executornames")
    targets = _SEP + _SEP.join(names) + _SEP if names else None
    wd = parse_time(p["waitdeadline"]) if spec["maxwaittime"] > 0 and p["state"] == 0 else None
    ed: int | None = None
    if p["state"] == 1 and spec["maxexectime"] >= 0:
        ed = parse_time(p["execdeadline"])  # maxexectime 0 → zero deadline → expired (quirk §8.9)
    return (cond["colonyname"], p["state"], cond["executortype"], p["prioritytime"],
            1 if p["waitforparents"] else 0, targets, p["assignedexecutorid"], p["processgraphid"], wd, ed,
            parse_time(p["submissiontime"]), parse_time(p["starttime"]), parse_time(p["endtime"]),
            p["initiatorname"], spec["label"], _dumps(p))


K = TypeVar("K")
V = TypeVar("V")
_CACHE_MAX = 50_000  # entries per cache of SqliteTx; past that it starts empty again


def _cached(cache: dict[K, V], key: K, load: Callable[[], V]) -> V:
    """cache[key], loaded on a miss; a cache past _CACHE_MAX entries is emptied first."""
    hit = cache.get(key)
    if hit is None:
        hit = load()
        if len(cache) > _CACHE_MAX:
            cache.clear()
        cache[key] = hit
    return hit


class SqliteTx:
    """All reads and writes the handlers need, each one statement or a few; no business rules here."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.c = conn
        self.events: list[tuple[Any, ...]] = []
        # (colony, signer) → (executor doc | None, user doc | None): membership is checked on every
        # request and changes rarely. Any write to colonies/users/executors, and any rollback, clears it.
        # Only valid when this Tx sees every write (SqliteStore: one process, one connection), so it is
        # off unless the store turns it on; stores shared by several servers must leave it off.
        self.cache_members = False
        self._members: dict[tuple[str, str], tuple[dict[str, Any] | None, dict[str, Any] | None]] = {}
        # (colony, executorname, funcname) → function docs, under the same rule (the statistics of
        # every closed process read them): kept current by add_function/put_function_stats,
        # cleared by removals and rollbacks.
        self._functions: dict[tuple[str, str, str], list[dict[str, Any]]] = {}

    def invalidate(self) -> None:
        self._members.clear()
        self._functions.clear()

    def member(self, colony: str, signer: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(executor with that id in the colony, user with that id in the colony); copies, cached."""
        if not self.cache_members:
            return self.get_executor_by_id(colony, signer), self.get_user_by_id(colony, signer)
        ex, user = _cached(self._members, (colony, signer),
                           lambda: (self.get_executor_by_id(colony, signer), self.get_user_by_id(colony, signer)))
        return (dict(ex) if ex is not None else None), (dict(user) if user is not None else None)

    def executor_in(self, colony: str, executorid: str) -> dict[str, Any] | None:
        """get_executor_by_id, answered from the member cache when that is on."""
        if self.cache_members:
            return self.member(colony, executorid)[0]
        return self.get_executor_by_id(colony, executorid)

    def emit(self, *event: Any) -> None:
        """Queue an event to publish after COMMIT (dropped if this operation rolls back)."""
        self.events.append(event)

    # ---- helpers
    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        row = self.c.execute(sql, args).fetchone()
        return None if row is None else _loads(row[0])

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        return [_loads(r[0]) for r in self.c.execute(sql, args).fetchall()]

    # ---- server
    def get_meta(self, key: str) -> str | None:
        row = self.c.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.c.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                       (key, value))

    def next_seq(self, key: str) -> int:
        n = int(self.get_meta(key) or "0") + 1
        self.set_meta(key, str(n))
        return n

    # ---- colonies
    def get_colony(self, name: str) -> dict[str, Any] | None:
        return self._one("SELECT doc FROM colonies WHERE name=?", (name,))  # type: ignore[no-any-return]

    def list_colonies(self) -> list[dict[str, Any]]:
        return self._all("SELECT doc FROM colonies ORDER BY name")

    def add_colony(self, colony: dict[str, Any]) -> None:
        self._members.clear()
        self.c.execute("INSERT INTO colonies (name, colonyid, doc) VALUES (?,?,?)",
                       (colony["name"], colony["colonyid"], _dumps(colony)))

    def remove_colony(self, name: str) -> None:
        """Cascade (protocol §4.1): everything of the colony except files and snapshots."""
        self.invalidate()
        for sql in ("DELETE FROM colonies WHERE name=?", "DELETE FROM users WHERE colonyname=?",
                    "DELETE FROM executors WHERE colonyname=?", "DELETE FROM functions WHERE colonyname=?",
                    "DELETE FROM attributes WHERE processid IN (SELECT processid FROM processes WHERE colonyname=?)",
                    "DELETE FROM processes WHERE colonyname=?", "DELETE FROM processgraphs WHERE colonyname=?",
                    "DELETE FROM logs WHERE colonyname=?", "DELETE FROM crons WHERE colonyname=?"):
            self.c.execute(sql, (name,))

    def count_colonies(self) -> int:
        return int(self.c.execute("SELECT count(*) FROM colonies").fetchone()[0])

    # ---- users
    def get_user(self, colony: str, name: str) -> dict[str, Any] | None:
        return self._one("SELECT doc FROM users WHERE colonyname=? AND name=?", (colony, name))  # type: ignore[no-any-return]

    def get_user_by_id(self, colony: str, userid: str) -> dict[str, Any] | None:
        return self._one("SELECT doc FROM users WHERE colonyname=? AND userid=?", (colony, userid))  # type: ignore[no-any-return]

    def list_users(self, colony: str) -> list[dict[str, Any]]:
        return self._all("SELECT doc FROM users WHERE colonyname=? ORDER BY name", (colony,))

    def add_user(self, user: dict[str, Any]) -> None:
        self._members.clear()
        self.c.execute("INSERT INTO users (colonyname, name, userid, doc) VALUES (?,?,?,?)",
                       (user["colonyname"], user["name"], user["userid"], _dumps(user)))

    def remove_user(self, colony: str, name: str) -> None:
        self._members.clear()
        self.c.execute("DELETE FROM users WHERE colonyname=? AND name=?", (colony, name))

    # ---- executors
    def get_executor(self, colony: str, name: str) -> dict[str, Any] | None:
        return self._one("SELECT doc FROM executors WHERE colonyname=? AND name=?", (colony, name))  # type: ignore[no-any-return]

    def get_executor_by_id(self, colony: str, executorid: str) -> dict[str, Any] | None:
        return self._one("SELECT doc FROM executors WHERE colonyname=? AND executorid=? ORDER BY state=1 DESC",  # type: ignore[no-any-return]
                         (colony, executorid))

    def executors_by_id(self, executorid: str) -> list[dict[str, Any]]:
        return self._all("SELECT doc FROM executors WHERE executorid=?", (executorid,))

    def list_executors(self, colony: str) -> list[dict[str, Any]]:
        return self._all("SELECT doc FROM executors WHERE colonyname=? ORDER BY name", (colony,))

    def put_executor(self, e: dict[str, Any]) -> None:
        self._members.clear()
        self.c.execute("INSERT INTO executors (colonyname, name, executorid, executortype, state, doc) "
                       "VALUES (?,?,?,?,?,?) ON CONFLICT(colonyname, name) DO UPDATE SET executorid=excluded.executorid, "
                       "executortype=excluded.executortype, state=excluded.state, doc=excluded.doc",
                       (e["colonyname"], e["executorname"], e["executorid"], e["executortype"], e["state"], _dumps(e)))

    def count_executors(self, colony: str | None = None) -> dict[int, int]:
        if colony is None:
            rows = self.c.execute("SELECT state, count(*) FROM executors GROUP BY state").fetchall()
        else:
            rows = self.c.execute("SELECT state, count(*) FROM executors WHERE colonyname=? GROUP BY state",
                                  (colony,)).fetchall()
        return {int(s): int(n) for s, n in rows}

    # ---- functions
    def add_function(self, f: dict[str, Any]) -> None:
        self._functions.clear()
        self.c.execute("INSERT OR REPLACE INTO functions (functionid, colonyname, executorname, funcname, doc) "
                       "VALUES (?,?,?,?,?)", (f["functionid"], f["colonyname"], f["executorname"], f["funcname"], _dumps(f)))

    def put_function_stats(self, f: dict[str, Any]) -> None:
        """Store new statistics of an existing function: its document only, so no index changes."""
        self.c.execute("UPDATE functions SET doc=? WHERE functionid=?", (_dumps(f), f["functionid"]))
        cached = self._functions.get((f["colonyname"], f["executorname"], f["funcname"]))
        if cached is not None:
            for i, g in enumerate(cached):
                if g["functionid"] == f["functionid"]:
                    cached[i] = dict(f)

    def get_function(self, functionid: str) -> dict[str, Any] | None:
        return self._one("SELECT doc FROM functions WHERE functionid=?", (functionid,))  # type: ignore[no-any-return]

    def find_functions(self, colony: str, executorname: str | None = None,
                       funcname: str | None = None) -> list[dict[str, Any]]:
        if not self.cache_members or executorname is None or funcname is None:
            return self._find_functions(colony, executorname, funcname)
        hit = _cached(self._functions, (colony, executorname, funcname),
                      lambda: self._find_functions(colony, executorname, funcname))
        return [dict(f) for f in hit]

    def _find_functions(self, colony: str, executorname: str | None, funcname: str | None) -> list[dict[str, Any]]:
        sql = "SELECT doc FROM functions WHERE colonyname=?"
        args: list[Any] = [colony]
        if executorname is not None:
            sql += " AND executorname=?"
            args.append(executorname)
        if funcname is not None:
            sql += " AND funcname=?"
            args.append(funcname)
        return self._all(sql + " ORDER BY executorname, funcname", tuple(args))

    def remove_function(self, functionid: str) -> None:
        self._functions.clear()
        self.c.execute("DELETE FROM functions WHERE functionid=?", (functionid,))

    def remove_functions_of(self, colony: str, executorname: str) -> None:
        self._functions.clear()
        self.c.execute("DELETE FROM functions WHERE colonyname=? AND executorname=?", (colony, executorname))

    # ---- processes
    def get_process(self, processid: str) -> dict[str, Any] | None:
        return self._one("SELECT doc FROM processes WHERE processid=?", (processid,))  # type: ignore[no-any-return]

    def get_processes(self, ids: list[str]) -> list[dict[str, Any]]:
        out = []
        for pid in ids:
            p = self.get_process(pid)
            if p is not None:
                out.append(p)
        return out

    def insert_process(self, p: dict[str, Any]) -> None:
        self.c.execute(_INSERT_PROC, (p["processid"], *_proc_row(p)))
        for a in p["attributes"]:
            self.c.execute("INSERT INTO attributes (attributeid, processid) VALUES (?,?)",
                           (a["attributeid"], p["processid"]))

    def update_process(self, p: dict[str, Any]) -> None:
        self.c.execute(_UPDATE_PROC, (*_proc_row(p), p["processid"]))

    def add_attribute_index(self, attributeid: str, processid: str) -> None:
        self.c.execute("INSERT INTO attributes (attributeid, processid) VALUES (?,?)", (attributeid, processid))

    def process_of_attribute(self, attributeid: str) -> str | None:
        row = self.c.execute("SELECT processid FROM attributes WHERE attributeid=?", (attributeid,)).fetchone()
        return None if row is None else str(row[0])

    def delete_process(self, processid: str) -> None:
        self.c.execute("DELETE FROM attributes WHERE processid=?", (processid,))
        self.c.execute("DELETE FROM processes WHERE processid=?", (processid,))

    def next_assignable(self, colony: str, executortype: str, executorname: str) -> dict[str, Any] | None:
        """Lowest prioritytime WAITING process of that colony and type this executor may take (§6.2)."""
        return self._one(  # type: ignore[no-any-return]
            "SELECT doc FROM processes INDEXED BY processes_queue WHERE colonyname=? AND executortype=? AND state=0 "
            "AND waitforparents=0 "
            "AND (targets IS NULL OR instr(targets, ?) > 0) ORDER BY prioritytime LIMIT 1",
            (colony, executortype, _SEP + executorname + _SEP))

    def list_processes(self, colony: str, state: int, count: int, *, executortype: str = "",
                       label: str = "", initiator: str = "", processgraphid: str = "") -> list[dict[str, Any]]:
        sql = "SELECT doc FROM processes WHERE colonyname=?"
        args: list[Any] = [colony]
        if state >= 0:
            sql += " AND state=?"
            args.append(state)
        if processgraphid:
            sql += " AND processgraphid=?"
            args.append(processgraphid)
        elif executortype:
            sql += " AND executortype=?"
            args.append(executortype)
        elif initiator:
            sql += " AND initiatorname=?"
            args.append(initiator)
        elif label:
            sql += " AND label=?"
            args.append(label)
        order = {0: "prioritytime ASC", 1: "starttime ASC"}.get(state, "endtime DESC, submission DESC")
        return self._all(f"{sql} ORDER BY {order} LIMIT ?", (*args, count))

    def processes_since(self, colony: str, since_ns: int, state: int, executorid: str) -> list[dict[str, Any]]:
        sql = "SELECT doc FROM processes WHERE colonyname=? AND submission>=? AND state=?"
        args: list[Any] = [colony, since_ns, state]
        if executorid:
            sql += " AND assignedexecutorid=?"
            args.append(executorid)
        return self._all(sql + " ORDER BY submission", tuple(args))

    def count_processes(self, colony: str | None = None) -> dict[int, int]:
        if colony is None:
            rows = self.c.execute("SELECT state, count(*) FROM processes GROUP BY state").fetchall()
        else:
            rows = self.c.execute("SELECT state, count(*) FROM processes WHERE colonyname=? GROUP BY state",
                                  (colony,)).fetchall()
        return {int(s): int(n) for s, n in rows}

    def running_of_executor(self, executorid: str) -> list[dict[str, Any]]:
        return self._all("SELECT doc FROM processes WHERE assignedexecutorid=? AND state=1", (executorid,))

    def exec_expired(self, now_ns: int, limit: int) -> list[dict[str, Any]]:
        return self._all("SELECT doc FROM processes WHERE state=1 AND execdeadline IS NOT NULL AND execdeadline<? "
                         "LIMIT ?", (now_ns, limit))

    def wait_expired(self, now_ns: int, limit: int) -> list[dict[str, Any]]:
        return self._all("SELECT doc FROM processes WHERE state=0 AND waitdeadline IS NOT NULL AND waitdeadline<? "
                         "ORDER BY prioritytime LIMIT ?", (now_ns, limit))

    def remove_all_processes(self, colony: str, state: int) -> None:
        cond = "colonyname=? AND processgraphid=''" + ("" if state < 0 else " AND state=?")
        args: tuple[Any, ...] = (colony,) if state < 0 else (colony, state)
        self.c.execute(f"DELETE FROM attributes WHERE processid IN (SELECT processid FROM processes WHERE {cond})", args)
        self.c.execute(f"DELETE FROM processes WHERE {cond}", args)

    def graph_processes(self, graphid: str) -> list[dict[str, Any]]:
        return self._all("SELECT doc FROM processes WHERE processgraphid=? ORDER BY submission, prioritytime", (graphid,))

    # ---- process graphs
    def get_graph(self, graphid: str) -> dict[str, Any] | None:
        return self._one("SELECT doc FROM processgraphs WHERE processgraphid=?", (graphid,))  # type: ignore[no-any-return]

    def put_graph(self, g: dict[str, Any]) -> None:
        self.c.execute("INSERT INTO processgraphs (processgraphid, colonyname, state, submission, doc) VALUES (?,?,?,?,?) "
                       "ON CONFLICT(processgraphid) DO UPDATE SET state=excluded.state, doc=excluded.doc",
                       (g["processgraphid"], g["colonyname"], g["state"], parse_time(g["submissiontime"]), _dumps(g)))

    def list_graphs(self, colony: str, state: int, count: int) -> list[dict[str, Any]]:
        return self._all("SELECT doc FROM processgraphs WHERE colonyname=? AND state=? ORDER BY submission DESC LIMIT ?",
                         (colony, state, count))

    def delete_graph(self, graphid: str) -> None:
        self.c.execute("DELETE FROM attributes WHERE processid IN (SELECT processid FROM processes WHERE processgraphid=?)",
                       (graphid,))
        self.c.execute("DELETE FROM processes WHERE processgraphid=?", (graphid,))
        self.c.execute("DELETE FROM processgraphs WHERE processgraphid=?", (graphid,))

    def graph_ids(self, colony: str, state: int) -> list[str]:
        if state < 0:
            rows = self.c.execute("SELECT processgraphid FROM processgraphs WHERE colonyname=?", (colony,)).fetchall()
        else:
            rows = self.c.execute("SELECT processgraphid FROM processgraphs WHERE colonyname=? AND state=?",
                                  (colony, state)).fetchall()
        return [str(r[0]) for r in rows]

    def count_graphs(self, colony: str) -> dict[int, int]:
        rows = self.c.execute("SELECT state, count(*) FROM processgraphs WHERE colonyname=? GROUP BY state",
                              (colony,)).fetchall()
        return {int(s): int(n) for s, n in rows}

    # ---- logs
    def add_log(self, log: dict[str, Any]) -> None:
        self.c.execute("INSERT INTO logs (processid, colonyname, executorname, message, timestamp) VALUES (?,?,?,?,?)",
                       (log["processid"], log["colonyname"], log["executorname"], log["message"], log["timestamp"]))

    def get_logs(self, *, processid: str = "", executorname: str = "", colonyname: str = "", count: int,
                 since: int, latest: bool) -> list[dict[str, Any]]:
        """By process, or by executor name within `colonyname`."""
        args: tuple[str, ...]
        if executorname:
            where, args = "executorname=? AND colonyname=?", (executorname, colonyname)
        else:
            where, args = "processid=?", (processid,)
        order = "DESC" if latest else "ASC"
        rows = self.c.execute(
            f"SELECT processid, colonyname, executorname, message, timestamp FROM logs WHERE {where} AND timestamp>? "
            f"ORDER BY timestamp {order}, seq {order} LIMIT ?", (*args, since, count)).fetchall()
        if latest:
            rows.reverse()
        return [{"processid": r[0], "colonyname": r[1], "executorname": r[2], "message": r[3], "timestamp": r[4]}
                for r in rows]

    def search_logs(self, colony: str, text: str, since_ns: int, count: int) -> list[dict[str, Any]]:
        rows = self.c.execute(
            "SELECT processid, colonyname, executorname, message, timestamp FROM logs WHERE colonyname=? "
            "AND timestamp>=? AND instr(message, ?) > 0 ORDER BY timestamp LIMIT ?",
            (colony, since_ns, text, count)).fetchall()
        return [{"processid": r[0], "colonyname": r[1], "executorname": r[2], "message": r[3], "timestamp": r[4]}
                for r in rows]

    # ---- files
    def add_file(self, f: dict[str, Any]) -> None:
        self.c.execute("INSERT INTO files (fileid, colonyname, label, name, sequencenr, doc) VALUES (?,?,?,?,?,?)",
                       (f["fileid"], f["colonyname"], f["label"], f["name"], f["sequencenr"], _dumps(f)))

    def get_file_by_id(self, colony: str, fileid: str) -> dict[str, Any] | None:
        return self._one("SELECT doc FROM files WHERE colonyname=? AND fileid=?", (colony, fileid))  # type: ignore[no-any-return]

    def get_file_versions(self, colony: str, label: str, name: str) -> list[dict[str, Any]]:
        return self._all("SELECT doc FROM files WHERE colonyname=? AND label=? AND name=? ORDER BY sequencenr DESC",
                         (colony, label, name))

    def latest_files_under(self, colony: str, label: str, recursive: bool) -> list[dict[str, Any]]:
        """The newest version of every file name in `label` (and its sub-labels if recursive)."""
        args: tuple[Any, ...]
        if recursive:
            where, args = "colonyname=? AND (label=? OR label LIKE ?)", (colony, label, label.rstrip("/") + "/%")
        else:
            where, args = "colonyname=? AND label=?", (colony, label)
        return self._all(f"SELECT f.doc FROM files f JOIN (SELECT label AS l, name AS n, max(sequencenr) AS s FROM files "
                         f"WHERE {where} GROUP BY label, name) m ON f.colonyname=? AND f.label=m.l AND f.name=m.n "
                         f"AND f.sequencenr=m.s ORDER BY f.label, f.name", (*args, colony))

    def file_labels(self, colony: str) -> list[tuple[str, int]]:
        rows = self.c.execute("SELECT label, count(*) FROM files WHERE colonyname=? GROUP BY label ORDER BY label",
                              (colony,)).fetchall()
        return [(str(r[0]), int(r[1])) for r in rows]

    def remove_file(self, colony: str, fileid: str = "", label: str = "", name: str = "") -> int:
        if fileid:
            cur = self.c.execute("DELETE FROM files WHERE colonyname=? AND fileid=?", (colony, fileid))
        else:
            cur = self.c.execute("DELETE FROM files WHERE colonyname=? AND label=? AND name=?", (colony, label, name))
        return int(cur.rowcount)

    # ---- snapshots
    def add_snapshot(self, s: dict[str, Any]) -> None:
        self.c.execute("INSERT INTO snapshots (snapshotid, colonyname, name, added, doc) VALUES (?,?,?,?,?)",
                       (s["snapshotid"], s["colonyname"], s["name"], parse_time(s["added"]), _dumps(s)))

    def get_snapshot(self, colony: str, snapshotid: str = "", name: str = "") -> dict[str, Any] | None:
        if snapshotid:
            return self._one("SELECT doc FROM snapshots WHERE colonyname=? AND snapshotid=?", (colony, snapshotid))  # type: ignore[no-any-return]
        return self._one("SELECT doc FROM snapshots WHERE colonyname=? AND name=?", (colony, name))  # type: ignore[no-any-return]

    def list_snapshots(self, colony: str) -> list[dict[str, Any]]:
        return self._all("SELECT doc FROM snapshots WHERE colonyname=? ORDER BY added DESC", (colony,))

    def remove_snapshots(self, colony: str, snapshotid: str = "", name: str = "", everything: bool = False) -> int:
        if everything:
            cur = self.c.execute("DELETE FROM snapshots WHERE colonyname=?", (colony,))
        elif snapshotid:
            cur = self.c.execute("DELETE FROM snapshots WHERE colonyname=? AND snapshotid=?", (colony, snapshotid))
        else:
            cur = self.c.execute("DELETE FROM snapshots WHERE colonyname=? AND name=?", (colony, name))
        return int(cur.rowcount)

    # ---- crons
    def put_cron(self, cron: dict[str, Any]) -> None:
        self.c.execute("INSERT INTO crons (cronid, colonyname, name, doc) VALUES (?,?,?,?) ON CONFLICT(cronid) "
                       "DO UPDATE SET doc=excluded.doc", (cron["cronid"], cron["colonyname"], cron["name"], _dumps(cron)))

    def get_cron(self, cronid: str) -> dict[str, Any] | None:
        return self._one("SELECT doc FROM crons WHERE cronid=?", (cronid,))  # type: ignore[no-any-return]

    def list_crons(self, colony: str | None, count: int) -> list[dict[str, Any]]:
        if colony is None:
            return self._all("SELECT doc FROM crons LIMIT ?", (count,))
        return self._all("SELECT doc FROM crons WHERE colonyname=? ORDER BY name LIMIT ?", (colony, count))

    def remove_cron(self, cronid: str) -> None:
        self.c.execute("DELETE FROM crons WHERE cronid=?", (cronid,))


def _conforms(tx: SqliteTx) -> TxProtocol:
    """Type-level check (mypy) that SqliteTx implements the Tx contract."""
    return tx
