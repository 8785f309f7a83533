"""Colonies identities and signature recovery (secp256k1 via coincurve), as the server needs them.

Duplicated on purpose from the SDK's ~40 lines: the server imports only itself (ARCHITECTURE.md).
"""

from __future__ import annotations

import hashlib

import coincurve

__all__ = ["SignatureError", "id_from_prvkey", "id_from_pubkey", "recover_id", "sign"]

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = SECP256K1_N // 2
_from_sig = coincurve.PublicKey.from_signature_and_message


class SignatureError(ValueError):
    """A signature or key that is malformed or cannot be recovered."""


def id_from_pubkey(pub65: bytes) -> str:
    """Colonies id: SHA3-256 of the lowercase hex *text* of the uncompressed public key."""
    return hashlib.sha3_256(pub65.hex().encode("ascii")).hexdigest()


def _private_key(prvkey: str) -> coincurve.PrivateKey:
    try:
        raw = bytes.fromhex(prvkey)
    except (ValueError, TypeError) as e:
        raise SignatureError("private key must be 64 hex characters") from e
    if len(raw) != 32 or not 0 < int.from_bytes(raw, "big") < SECP256K1_N:
        raise SignatureError("private key must be 32 bytes in the secp256k1 range")
    return coincurve.PrivateKey(raw)


def id_from_prvkey(prvkey: str) -> str:
    """The id that belongs to a private key."""
    return id_from_pubkey(_private_key(prvkey).public_key.format(compressed=False))


def sign(message: str, prvkey: str) -> str:
    """RFC 6979, low-S, recoverable signature over SHA3-256(message): hex r || s || v (v in {0, 1})."""
    digest = hashlib.sha3_256(message.encode("utf-8")).digest()
    return _private_key(prvkey).sign_recoverable(digest, hasher=None).hex()


def recover_id(message: str, signature: str) -> str:
    """The signer's id recovered from (message, signature); SignatureError for anything malformed.

    Refuses bad hex, length other than 65 bytes, recovery id > 3 and high-S values, like the Go server.
    A well-formed signature over another message recovers some other id: that is a role failure later.
    """
    try:
        sig = bytes.fromhex(signature)
    except (ValueError, TypeError) as e:
        raise SignatureError("signature is not hex") from e
    if len(sig) != 65:
        raise SignatureError(f"signature must be 65 bytes, got {len(sig)}")
    if sig[64] > 3:
        raise SignatureError("signature recovery id must be 0..3")
    if int.from_bytes(sig[32:64], "big") > _HALF_N:
        raise SignatureError("signature has a high S value")
    digest = hashlib.sha3_256(message.encode("utf-8")).digest()
    try:
        pub = _from_sig(sig, digest, hasher=None)
    except Exception as e:  # coincurve raises plain Exception for unrecoverable input
        raise SignatureError("signature cannot be recovered") from e
    return id_from_pubkey(pub.format(compressed=False))
