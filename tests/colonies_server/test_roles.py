"""Role checks over a real SQLite Tx (no sockets)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from colonies_server.errors import RPCError
from colonies_server.roles import (
    APPROVED,
    PENDING,
    require_colony_owner,
    require_executor_self,
    require_member,
    require_server_owner,
)
from colonies_server.store.schema import SCHEMA
from colonies_server.store.sqlite_tx import SqliteTx

COLONY_ID, EXEC_ID, USER_ID, OTHER = "c" * 64, "e" * 64, "u" * 64, "o" * 64


@pytest.fixture
def tx(tmp_path: Path) -> Iterator[SqliteTx]:
    conn = sqlite3.connect(tmp_path / "r.db", isolation_level=None)
    conn.executescript(SCHEMA)
    t = SqliteTx(conn)
    t.add_colony({"colonyid": COLONY_ID, "name": "a"})
    t.add_colony({"colonyid": OTHER, "name": "b"})
    t.add_user({"colonyname": "a", "userid": USER_ID, "name": "u", "email": "", "phone": ""})
    t.put_executor({"colonyname": "a", "executorname": "e", "executorid": EXEC_ID, "executortype": "t",
                    "state": PENDING})
    yield t
    conn.close()


def _denied(fn: object, *args: object) -> str:
    with pytest.raises(RPCError) as e:
        fn(*args)  # type: ignore[operator]
    assert e.value.status == 403
    return e.value.message


def test_server_owner() -> None:
    require_server_owner("s" * 64, "s" * 64)
    assert _denied(require_server_owner, "s" * 64, OTHER) == "Access denied, not server owner"
    _denied(require_server_owner, "", "")


def test_colony_owner(tx: SqliteTx) -> None:
    assert require_colony_owner(tx, "a", COLONY_ID)["name"] == "a"
    assert _denied(require_colony_owner, tx, "a", OTHER) == "Access denied, not colony owner"
    assert "does not exists" in _denied(require_colony_owner, tx, "zz", COLONY_ID)


def test_member_rules(tx: SqliteTx) -> None:
    text = "Access denied, not a member of Colony with name a"
    assert require_member(tx, "a", USER_ID)[0] == "user"
    assert _denied(require_member, tx, "a", EXEC_ID) == text  # pending executor: user-check text
    assert require_member(tx, "a", EXEC_ID, False)[0] == "executor"  # M*
    assert _denied(require_member, tx, "a", COLONY_ID) == text  # the colony owner is not a member
    assert _denied(require_member, tx, "b", USER_ID) == "Access denied, not a member of Colony with name b"
    # No colony name in the message: an empty name, as upstream prints it, not Python's None.
    assert _denied(require_member, tx, None, USER_ID) == "Access denied, not a member of Colony with name "
    e = tx.get_executor("a", "e")
    assert e is not None
    e["state"] = APPROVED
    tx.put_executor(e)
    assert require_member(tx, "a", EXEC_ID)[0] == "executor"


def test_executor_self(tx: SqliteTx) -> None:
    assert require_executor_self(tx, "a", "e", EXEC_ID)["executorname"] == "e"
    with pytest.raises(RPCError) as e:
        require_executor_self(tx, "a", "e", USER_ID)
    assert e.value.status == 403
    with pytest.raises(RPCError) as e:
        require_executor_self(tx, "a", "nobody", EXEC_ID)
    assert e.value.status == 400
