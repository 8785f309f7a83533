"""sdk.crypto against pycolonies' vectors, byte for byte, and the key/signature checks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdk.crypto import (
    SECP256K1_N,
    SignatureError,
    digest,
    id_from_prvkey,
    id_from_pubkey,
    new_prvkey,
    recover_id,
    sign,
)
from sdk.envelope import build_envelope


def test_every_vector_reproduces_id_signature_and_recovery(vectors: dict[str, Any]) -> None:
    assert len(vectors["vectors"]) >= 8
    for v in vectors["vectors"]:
        assert id_from_prvkey(v["prvkey"]) == v["id"], v["name"]
        assert id_from_pubkey(bytes.fromhex(v["pubkey_uncompressed"])) == v["id"], v["name"]
        assert digest(v["message"]).hex() == v["sha3_256_of_message"], v["name"]
        assert sign(v["message"], v["prvkey"]) == v["signature"], v["name"]
        assert int(v["signature"][-2:], 16) == v["recid"], v["name"]
        assert recover_id(v["message"], v["signature"]) == v["id"], v["name"]


def test_dev_identities(vectors: dict[str, Any]) -> None:
    for ident in vectors["dev_identities"].values():
        assert id_from_prvkey(ident["prvkey"]) == ident["id"]


def test_envelopes_as_sent_by_pycolonies_are_reproduced(vectors: dict[str, Any]) -> None:
    rpc = [v for v in vectors["vectors"] if "rpc_envelope_as_sent_by_pycolonies" in v]
    assert rpc, "the vectors file should carry pycolonies envelopes"
    for v in rpc:
        envelope = build_envelope(v["decoded_payload_json"], v["prvkey"])
        assert envelope == v["rpc_envelope_as_sent_by_pycolonies"], v["name"]
        assert json.loads(envelope)["payload"] == v["message"]


def test_new_keys_are_valid_and_distinct() -> None:
    keys = {new_prvkey() for _ in range(20)}
    assert len(keys) == 20
    for k in keys:
        assert len(k) == 64 and 0 < int(k, 16) < SECP256K1_N
        assert recover_id("m", sign("m", k)) == id_from_prvkey(k)


@pytest.mark.parametrize("bad", ["", "zz" * 32, "00" * 31, "00" * 33, "00" * 32, f"{SECP256K1_N:064x}"])
def test_bad_private_keys_are_refused(bad: str) -> None:
    with pytest.raises(SignatureError):
        sign("m", bad)


def test_recover_refuses_malformed_signatures(vectors: dict[str, Any]) -> None:
    v = vectors["vectors"][1]
    sig = bytes.fromhex(v["signature"])
    with pytest.raises(SignatureError, match="not hex"):
        recover_id(v["message"], "xy" * 65)
    with pytest.raises(SignatureError, match="65 bytes"):
        recover_id(v["message"], sig[:64].hex())
    with pytest.raises(SignatureError, match="recovery id"):
        recover_id(v["message"], (sig[:64] + b"\x04").hex())
    # The same point with s' = n - s (high S) must be refused, as the Go server does.
    s = int.from_bytes(sig[32:64], "big")
    high = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([sig[64] ^ 1])
    with pytest.raises(SignatureError, match="high S"):
        recover_id(v["message"], high.hex())


def test_signature_over_another_message_recovers_another_id(vectors: dict[str, Any]) -> None:
    v = vectors["vectors"][1]
    assert recover_id("not the signed message", v["signature"]) != v["id"]


@settings(max_examples=15, deadline=None)
@given(message=st.text(max_size=200))
def test_matches_pycolonies_pure_python_signer(message: str) -> None:
    from crypto import Crypto  # pycolonies' signer (site-packages module `crypto`)

    key = "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05"
    assert sign(message, key) == Crypto(native=False).sign(message, key)
