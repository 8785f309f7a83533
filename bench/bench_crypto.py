"""Sign+verify throughput: our coincurve signer vs pycolonies' pure-Python signer, same run.

Run: .venv/bin/python bench/bench_crypto.py [--seconds 4] [--rounds 8]
Writes bench/results/bench_crypto.json. pycolonies has no verify/recover of its own, so its
"verify" side is public-key recovery written with pycolonies' own curve arithmetic (the same
pure-Python code path its signer uses); both sides must recover the signer's id.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import crypto as pyc_crypto  # noqa: E402 - pycolonies' signer module (site-packages `crypto`)

from sdk.crypto import id_from_prvkey, recover_id, sign  # noqa: E402

KEY = "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05"
# A realistic message: the base64 payload of an assign request, what executors sign most.
MESSAGE = base64.b64encode(json.dumps({"msgtype": "assignprocessmsg", "timeout": 10,
                                       "colonyname": "dev"}).encode()).decode()


def pyc_recover_id(message: str, signature: str) -> str:
    """Public-key recovery in pure Python on pycolonies' curve helpers (it ships none itself)."""
    n, p = pyc_crypto.N, pyc_crypto.P
    sig = bytes.fromhex(signature)
    r, s, v = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]
    z = int.from_bytes(hashlib.sha3_256(message.encode()).digest(), "big")
    y = pow((r * r * r + 7) % p, (p + 1) // 4, p)
    if y % 2 != v % 2:
        y = p - y
    r_inv = pyc_crypto.inv(r, n)
    a = pyc_crypto.to_jacobian(pyc_crypto.fast_multiply((r, y), s * r_inv % n))
    b = pyc_crypto.to_jacobian(pyc_crypto.fast_multiply(pyc_crypto.G, (-z * r_inv) % n))
    q = pyc_crypto.from_jacobian(pyc_crypto.jacobian_add(a, b))
    pub = "04" + pyc_crypto.encode_raw_public_key(q).hex()
    return hashlib.sha3_256(pub.encode()).hexdigest()


def rate(fn: Callable[[], object], seconds: float) -> tuple[float, int]:
    """Operations per second over at least `seconds` (and at least 3 calls)."""
    fn()  # warm-up
    count, start = 0, time.perf_counter()
    while True:
        fn()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and count >= 3:
            return count / elapsed, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="time per operation and side")
    parser.add_argument("--rounds", type=int, default=8, help="interleaved rounds")
    args = parser.parse_args()

    ident = id_from_prvkey(KEY)
    ours_sig = sign(MESSAGE, KEY)
    theirs_sig = pyc_crypto.sign(MESSAGE, KEY)
    assert ours_sig == theirs_sig, "signatures must be byte-identical"
    assert recover_id(MESSAGE, ours_sig) == ident == pyc_recover_id(MESSAGE, theirs_sig)

    def ours_both() -> None:
        assert recover_id(MESSAGE, sign(MESSAGE, KEY)) == ident

    def theirs_both() -> None:
        assert pyc_recover_id(MESSAGE, pyc_crypto.sign(MESSAGE, KEY)) == ident

    ops: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "sign": (lambda: sign(MESSAGE, KEY), lambda: pyc_crypto.sign(MESSAGE, KEY)),
        "verify (recover id)": (lambda: recover_id(MESSAGE, ours_sig), lambda: pyc_recover_id(MESSAGE, theirs_sig)),
        "sign+verify": (ours_both, theirs_both),
    }
    # Interleaved rounds: on a shared machine the load drifts, and measuring one side after the
    # other would fold that drift into the ratio.
    totals = {name: [0, 0.0, 0, 0.0] for name in ops}
    for _ in range(args.rounds):
        for name, (ours_fn, theirs_fn) in ops.items():
            rate_o, n_o = rate(ours_fn, args.seconds / args.rounds)
            rate_t, n_t = rate(theirs_fn, args.seconds / args.rounds)
            t = totals[name]
            t[0] += n_o
            t[1] += n_o / rate_o
            t[2] += n_t
            t[3] += n_t / rate_t
    print(f"{'operation':<22}{'sdk (coincurve) /s':>20}{'pycolonies pure-Python /s':>28}{'ratio':>10}")
    result = {}
    for name, (n_ours, s_ours, n_theirs, s_theirs) in totals.items():
        ours, theirs = n_ours / s_ours, n_theirs / s_theirs
        ratio = ours / theirs
        print(f"{name:<22}{ours:>20,.0f}{theirs:>28,.1f}{ratio:>9,.0f}x")
        result[name] = {"sdk_per_s": round(ours, 1), "pycolonies_per_s": round(theirs, 2),
                        "ratio": round(ratio, 1), "sdk_ops": n_ours, "pycolonies_ops": n_theirs}
    out = {
        "benchmark": "bench_crypto",
        "message_bytes": len(MESSAGE),
        "rounds": args.rounds,
        "results": result,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    # Other work on a shared machine skews absolute numbers; the ratios are same-run.
                    "loadavg_1m_at_end": round(os.getloadavg()[0], 2)},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = ROOT / "bench" / "results" / "bench_crypto.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
