"""colonies_server.crypto against the pycolonies-generated vectors, and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from colonies_server.crypto import SECP256K1_N, SignatureError, id_from_prvkey, recover_id, sign

VECTORS = json.loads((Path(__file__).parents[1] / "data" / "colonies_vectors.json").read_text())["vectors"]


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vectors_sign_recover_and_id(v: dict[str, str]) -> None:
    assert id_from_prvkey(v["prvkey"]) == v["id"]
    assert sign(v["message"], v["prvkey"]) == v["signature"]
    assert recover_id(v["message"], v["signature"]) == v["id"]


def test_signature_over_another_message_recovers_another_id() -> None:
    v = VECTORS[0]
    assert recover_id(v["message"] + "x", v["signature"]) != v["id"]


@pytest.mark.parametrize("bad", ["zz", "ab" * 64, "ab" * 66, ""])
def test_malformed_signatures_are_refused(bad: str) -> None:
    with pytest.raises(SignatureError):
        recover_id("msg", bad)


def test_high_s_and_big_recovery_id_are_refused() -> None:
    sig = bytes.fromhex(sign("msg", VECTORS[0]["prvkey"]))
    s = int.from_bytes(sig[32:64], "big")
    high = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([sig[64] ^ 1])
    with pytest.raises(SignatureError, match="high S"):
        recover_id("msg", high.hex())
    with pytest.raises(SignatureError, match="recovery id"):
        recover_id("msg", (sig[:64] + b"\x04").hex())


def test_bad_private_keys() -> None:
    for bad in ("nothex", "00" * 32, "ab" * 31):
        with pytest.raises(SignatureError):
            id_from_prvkey(bad)
