"""Typed field access for message objects: wrong types are 400s with the field's name, never crashes."""

from __future__ import annotations

from typing import Any

from ..errors import RPCError

__all__ = ["get_bool", "get_int", "get_list", "get_num", "get_obj", "get_str"]

MAX_STR = 1 << 20


def get_str(msg: dict[str, Any], key: str, default: str = "", max_len: int = MAX_STR) -> str:
    v = msg.get(key, default)
    if v is None:
        return default
    if not isinstance(v, str):
        raise RPCError(400, f"Invalid message, {key} must be a string")
    if len(v) > max_len:
        raise RPCError(400, f"Invalid message, {key} is longer than {max_len} characters")
    return v


def get_int(msg: dict[str, Any], key: str, default: int = 0) -> int:
    v = msg.get(key, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or abs(v) > 2**62 or v != int(v):
        raise RPCError(400, f"Invalid message, {key} must be an integer")
    return int(v)


def get_num(msg: dict[str, Any], key: str, default: float = 0.0) -> float:
    v = msg.get(key, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or abs(v) > 1e12:
        raise RPCError(400, f"Invalid message, {key} must be a number")
    return float(v)


def get_bool(msg: dict[str, Any], key: str, default: bool = False) -> bool:
    v = msg.get(key, default)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise RPCError(400, f"Invalid message, {key} must be true or false")
    return v


def get_obj(msg: dict[str, Any], key: str) -> dict[str, Any]:
    v = msg.get(key)
    if not isinstance(v, dict):
        raise RPCError(400, f"Invalid message, {key} must be an object")
    return v


def get_list(msg: dict[str, Any], key: str) -> list[Any]:
    v = msg.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise RPCError(400, f"Invalid message, {key} must be a list")
    return v
