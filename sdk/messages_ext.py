"""RPC builders for process channels and blueprints (protocol §4.12-§4.13): schema-free JSON."""

from __future__ import annotations

import base64
import math
from typing import Any

from .call import Call, as_none, as_raw

__all__ = [
    "add_blueprint",
    "add_blueprint_definition",
    "channel_append",
    "channel_read",
    "decode_channel_entries",
    "get_blueprint",
    "get_blueprint_definition",
    "get_blueprint_definitions",
    "get_blueprint_history",
    "get_blueprints",
    "reconcile_blueprint",
    "remove_blueprint",
    "remove_blueprint_definition",
    "subscribe_channel_msg",
    "update_blueprint",
    "update_blueprint_status",
]

Json = dict[str, Any]


def channel_append(processid: str, name: str, sequence: int, payload: bytes | str, inreplyto: int = 0,
                   payloadtype: str = "", *, prvkey: str | None = None) -> Call[None]:
    """Append to a process channel; the payload goes as a JSON array of byte values, as pycolonies
    sends it."""
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    msg = {"msgtype": "channelappendmsg", "processid": processid, "name": name, "sequence": sequence,
           "inreplyto": inreplyto, "payload": list(data), "payloadtype": payloadtype}
    return Call(msg, as_none, prvkey)


def decode_channel_entries(payload: Any) -> list[Json]:
    """Channel entries with `payload` turned into bytes (it arrives as base64 or a byte array)."""
    entries: list[Json] = []
    for entry in payload or []:
        item = dict(entry)
        raw = item.get("payload")
        if isinstance(raw, list):
            item["payload"] = bytes(raw)
        elif isinstance(raw, str):
            item["payload"] = base64.b64decode(raw)
        else:
            item["payload"] = b""
        entries.append(item)
    return entries


def channel_read(processid: str, name: str, afterseq: int = 0, limit: int = 0, *,
                 prvkey: str | None = None) -> Call[list[Json]]:
    msg = {"msgtype": "channelreadmsg", "processid": processid, "name": name, "afterseq": afterseq,
           "limit": limit}
    return Call(msg, decode_channel_entries, prvkey)


def subscribe_channel_msg(processid: str, name: str, afterseq: int = 0, timeout: float = 30) -> Json:
    """The `/pubsub` message for a channel subscription (the server ends it with an empty batch)."""
    return {"processid": processid, "name": name, "afterseq": afterseq, "timeout": max(1, math.ceil(timeout)),
            "msgtype": "subscribechannelmsg"}


def add_blueprint_definition(definition: Json, *, prvkey: str | None = None) -> Call[Any]:
    return Call({"msgtype": "addblueprintdefinitionmsg", "blueprintdefinition": definition}, as_raw, prvkey)


def get_blueprint_definition(colony: str, name: str, *, prvkey: str | None = None) -> Call[Any]:
    return Call({"msgtype": "getblueprintdefinitionmsg", "colonyname": colony, "name": name}, as_raw, prvkey)


def get_blueprint_definitions(colony: str, *, prvkey: str | None = None) -> Call[Any]:
    return Call({"msgtype": "getblueprintdefinitionsmsg", "colonyname": colony}, as_raw, prvkey)


def remove_blueprint_definition(colony: str, name: str, *, prvkey: str | None = None) -> Call[None]:
    msg = {"msgtype": "removeblueprintdefinitionmsg", "namespace": colony, "name": name}
    return Call(msg, as_none, prvkey)


def add_blueprint(blueprint: Json, *, prvkey: str | None = None) -> Call[Any]:
    return Call({"msgtype": "addblueprintmsg", "blueprint": blueprint}, as_raw, prvkey)


def get_blueprint(colony: str, name: str, *, prvkey: str | None = None) -> Call[Any]:
    return Call({"msgtype": "getblueprintmsg", "namespace": colony, "name": name}, as_raw, prvkey)


def get_blueprints(colony: str, kind: str | None = None, location: str | None = None, *,
                   prvkey: str | None = None) -> Call[Any]:
    msg: Json = {"msgtype": "getblueprintsmsg", "namespace": colony}
    if kind:
        msg["kind"] = kind
    if location:
        msg["locationname"] = location
    return Call(msg, as_raw, prvkey)


def update_blueprint(blueprint: Json, force_generation: bool = False, *,
                     prvkey: str | None = None) -> Call[Any]:
    msg = {"msgtype": "updateblueprintmsg", "blueprint": blueprint, "forcegeneration": force_generation}
    return Call(msg, as_raw, prvkey)


def remove_blueprint(colony: str, name: str, *, prvkey: str | None = None) -> Call[None]:
    return Call({"msgtype": "removeblueprintmsg", "namespace": colony, "name": name}, as_none, prvkey)


def update_blueprint_status(colony: str, name: str, status: Json, *, prvkey: str | None = None) -> Call[Any]:
    msg = {"msgtype": "updateblueprintstatusmsg", "colonyname": colony, "blueprintname": name,
           "status": status}
    return Call(msg, as_raw, prvkey)


def reconcile_blueprint(colony: str, name: str, force: bool = False, *,
                        prvkey: str | None = None) -> Call[Any]:
    msg = {"msgtype": "reconcileblueprintmsg", "namespace": colony, "name": name, "force": force}
    return Call(msg, as_raw, prvkey)


def get_blueprint_history(blueprintid: str, limit: int | None = None, *,
                          prvkey: str | None = None) -> Call[Any]:
    msg: Json = {"msgtype": "getblueprinthistorymsg", "blueprintid": blueprintid}
    if limit is not None:
        msg["limit"] = limit
    return Call(msg, as_raw, prvkey)
