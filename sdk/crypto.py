"""Colonies identities: secp256k1 keys, ids, and recoverable signatures (coincurve)."""

from __future__ import annotations

import functools
import hashlib
import secrets

import coincurve

__all__ = [
    "SignatureError",
    "digest",
    "id_from_prvkey",
    "id_from_pubkey",
    "new_prvkey",
    "recover_id",
    "sign",
]

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = SECP256K1_N // 2


class SignatureError(ValueError):
    """A signature or key that is malformed or cannot be recovered."""


def digest(message: str | bytes) -> bytes:
    """SHA3-256 of the message text: what Colonies signs (the base64 payload string for RPC)."""
    data = message.encode("utf-8") if isinstance(message, str) else message
    return hashlib.sha3_256(data).digest()


@functools.lru_cache(maxsize=64)
def _private_key(prvkey: str) -> coincurve.PrivateKey:
    # Cached: building a PrivateKey derives its public key (a scalar multiplication that costs
    # more than the signature itself), and a process signs with very few keys.
    try:
        raw = bytes.fromhex(prvkey)
    except (ValueError, TypeError) as e:
        raise SignatureError("private key must be 64 hex characters") from e
    if len(raw) != 32:
        raise SignatureError(f"private key must be 32 bytes (64 hex characters), got {len(raw)} bytes")
    d = int.from_bytes(raw, "big")
    if not 0 < d < SECP256K1_N:
        raise SignatureError("private key is out of range for secp256k1")
    return coincurve.PrivateKey(raw)


def new_prvkey() -> str:
    """A fresh private key from the OS CSPRNG, as 64 lowercase hex characters."""
    while True:
        raw = secrets.token_bytes(32)
        if 0 < int.from_bytes(raw, "big") < SECP256K1_N:
            return raw.hex()


def id_from_pubkey(pub65: bytes) -> str:
    """Colonies id: SHA3-256 of the lowercase hex *text* of the uncompressed public key."""
    return hashlib.sha3_256(pub65.hex().encode("ascii")).hexdigest()


def id_from_prvkey(prvkey: str) -> str:
    """The id (server, colony, user or executor id) that belongs to a private key."""
    return id_from_pubkey(_private_key(prvkey).public_key.format(compressed=False))


def sign(message: str | bytes, prvkey: str) -> str:
    """Deterministic (RFC 6979), low-S, recoverable signature: hex of r || s || v with v in {0, 1}."""
    return _private_key(prvkey).sign_recoverable(digest(message), hasher=None).hex()


def recover_id(message: str | bytes, signature: str) -> str:
    """The signer's id, recovered from the message and its 130-hex-character signature.

    Raises SignatureError for bad hex, a length other than 65 bytes, a recovery id above 3,
    a high-S value (the Colonies server refuses those), or an unrecoverable signature.
    """
    try:
        sig = bytes.fromhex(signature)
    except (ValueError, TypeError) as e:
        raise SignatureError("signature is not hex") from e
    if len(sig) != 65:
        raise SignatureError(f"signature must be 65 bytes (130 hex characters), got {len(sig)} bytes")
    if sig[64] > 3:
        raise SignatureError(f"signature recovery id must be 0..3, got {sig[64]}")
    s = int.from_bytes(sig[32:64], "big")
    if s > _HALF_N:
        raise SignatureError("signature has a high S value")
    try:
        pub = coincurve.PublicKey.from_signature_and_message(sig, digest(message), hasher=None)
    except Exception as e:  # coincurve raises plain Exception/ValueError for unrecoverable input
        raise SignatureError(f"signature cannot be recovered: {e}") from e
    return id_from_pubkey(pub.format(compressed=False))
