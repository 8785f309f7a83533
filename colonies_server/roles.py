"""Role checks (protocol §3): server owner, colony owner, member (approved or any state), self.

Plain functions over a Tx; each returns the record that proved the role or raises RPCError 403.
"""

from __future__ import annotations

from typing import Any

from .errors import RPCError

__all__ = ["APPROVED", "PENDING", "REJECTED", "UNREGISTERED", "member_name", "require_colony",
           "require_colony_owner", "require_executor_self", "require_member", "require_server_owner"]

PENDING, APPROVED, REJECTED, UNREGISTERED = 0, 1, 2, 3


def require_server_owner(server_id: str, signer: str) -> None:
    if not server_id or signer != server_id:
        raise RPCError(403, "Access denied, not server owner")


def require_colony(tx: Any, colonyname: Any) -> dict[str, Any]:
    if not isinstance(colonyname, str) or not colonyname:
        raise RPCError(403, "Access denied, Empty Colony name")
    colony = tx.get_colony(colonyname)
    if colony is None:
        raise RPCError(403, f"Access denied, Colony with name {colonyname} does not exists")
    return colony  # type: ignore[no-any-return]


def require_colony_owner(tx: Any, colonyname: Any, signer: str) -> dict[str, Any]:
    colony = require_colony(tx, colonyname)
    if colony["colonyid"] != signer:
        raise RPCError(403, "Access denied, not colony owner")
    return colony


def require_member(tx: Any, colonyname: Any, signer: str, approved: bool = True) -> tuple[str, dict[str, Any]]:
    """("executor", record) or ("user", record); pending/rejected executors pass only with approved=False.

    The error is always the user-check text, even for a pending executor (quirk §8.7).
    """
    if isinstance(colonyname, str) and colonyname:
        ex, user = tx.member(colonyname, signer)
        if ex is not None and (not approved or ex["state"] == APPROVED):
            return "executor", ex
        if user is not None:
            return "user", user
    shown = colonyname if isinstance(colonyname, str) else ""  # Go prints a missing name as empty, not None
    raise RPCError(403, f"Access denied, not a member of Colony with name {shown}")


def require_executor_self(tx: Any, colonyname: Any, executorname: Any, signer: str,
                          approved: bool = False) -> dict[str, Any]:
    """The named executor must exist in the colony and be the signer (M*/M and SELF)."""
    require_member(tx, colonyname, signer, approved=approved)
    ex = tx.get_executor(colonyname, executorname) if isinstance(executorname, str) else None
    if ex is None:
        raise RPCError(400, f"Executor with name {executorname} not found in Colony {colonyname}")
    if ex["executorid"] != signer:
        raise RPCError(403, "Access denied, the signer is not the named executor")
    return ex  # type: ignore[no-any-return]


def member_name(kind: str, record: dict[str, Any]) -> str:
    """initiatorname: the executor's or the user's name."""
    return str(record["executorname"] if kind == "executor" else record["name"])
