"""Users: add (colony owner), list/get (members), remove (colony owner)."""

from __future__ import annotations

from typing import Any

from ..errors import RPCError
from ..registry import rpc
from ..roles import require_colony_owner, require_member
from ..runtime import Runtime
from .fields import get_obj, get_str

__all__: list[str] = []


@rpc("addusermsg")
async def add_user(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    u = get_obj(msg, "user")
    user = {"colonyname": get_str(u, "colonyname"), "userid": get_str(u, "userid"),
            "name": get_str(u, "name", max_len=256), "email": get_str(u, "email"), "phone": get_str(u, "phone")}
    if len(user["userid"]) != 64:
        raise RPCError(400, "Failed to add user, invalid user id length")
    if not user["name"]:
        raise RPCError(400, "Failed to add user, empty name")

    def op(tx: Any) -> Any:
        require_colony_owner(tx, user["colonyname"], signer)
        if tx.get_user(user["colonyname"], user["name"]) is not None:
            raise RPCError(400, f"A user with name {user['name']} already exists in Colony with name "
                                f"{user['colonyname']}")
        tx.add_user(user)
        return user
    return await rt.store.write(op)


@rpc("getusersmsg")
async def get_users(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony = msg.get("colonyname")

    def q(tx: Any) -> Any:
        require_member(tx, colony, signer, approved=False)
        return tx.list_users(colony) or None
    return await rt.store.read(q)


@rpc("getusermsg")
async def get_user(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, name = msg.get("colonyname"), get_str(msg, "name")

    def q(tx: Any) -> Any:
        require_member(tx, colony, signer, approved=False)
        user = tx.get_user(colony, name)
        if user is None:
            raise RPCError(500, f"Failed to get user, user with name {name} not found")
        return user
    return await rt.store.read(q)


@rpc("getuserbyidmsg")
async def get_user_by_id(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, userid = msg.get("colonyname"), get_str(msg, "userid")

    def q(tx: Any) -> Any:
        require_member(tx, colony, signer, approved=False)
        user = tx.get_user_by_id(colony, userid)
        if user is None:
            raise RPCError(404, f"Failed to get user, user with id {userid} not found")
        return user
    return await rt.store.read(q)


@rpc("removeusermsg")
async def remove_user(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, name = msg.get("colonyname"), get_str(msg, "name")

    def op(tx: Any) -> Any:
        require_colony_owner(tx, colony, signer)
        if tx.get_user(colony, name) is None:
            raise RPCError(400, f"User with name {name} not found")
        tx.remove_user(colony, name)
        return {}
    return await rt.store.write(op)
