"""Benchmark of IBC between two Plurigrid ledgers in one process: transfers per second end to end, and what a
proof costs.

Usage: .venv/bin/python benchmarks/bench_ibc.py [--transfers 2000]

1. Transfers A -> B, each relayed whole (send, client update, receive with its proof, acknowledgement
   with its proof; every message its own block on its ledger): transfers per second, and per message.
2. Proofs of a packet commitment in a store of N keys: making one (`Store.snapshot().prove`), checking it raw
   (`ics23.verify_membership`, the baseline) and through the light client (status, consensus state, decode,
   verify), per proof.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ibc.chains import Channels

from plurigrid.ibc.connection import UNORDERED
from plurigrid.ibc.relayer import Relayer, Side
from plurigrid.ibc.transfer import PORT
from plurigrid.state.ics23 import JMT_SPEC, decode_commitment_proof, verify_membership


def per_call_us(call, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transfers", type=int, default=2000)
    args = parser.parse_args()
    c = Channels(UNORDERED)
    ch_a, ch_b = c.open()
    a, b = c.a, c.b
    a.execute(lambda: a.transfer.mint("alice", "credit", 10**12))
    a.commit()
    relayer = Relayer(Side(a, c.path.a_client, ch_a, PORT), Side(b, c.path.b_client, ch_b, PORT))
    t0 = time.perf_counter()
    for _ in range(args.transfers):
        a.execute(lambda: a.transfer.send(ch_a, "alice", "bob", "credit", 1, b.height + 1000, 0, a.now_ns))
        a.commit()
        relayer.relay()
    seconds = time.perf_counter() - t0
    messages = sum(relayer.delivered.values()) + args.transfers
    print(f"1. {args.transfers:,} transfers A -> B relayed whole, one block per message")
    print(f"{'what':44s} {'value':>12s}")
    print(f"{'transfers per second':44s} {args.transfers / seconds:12,.0f}")
    print(f"{'messages (send, updates, recv, ack)':44s} {messages:12,d}")
    print(f"{'ms per message':44s} {seconds / messages * 1000:12.3f}")
    print(f"{'ledger heights (A, B)':44s} {f'{a.height:,} / {b.height:,}':>12s}")

    keys = len(list(a.store.snapshot().items(b"")))
    key = f"commitments/ports/{PORT}/channels/{ch_a}/sequences/1".encode()
    a.execute(lambda: a.transfer.send(ch_a, "alice", "bob", "credit", 1, b.height + 1000, 0, a.now_ns))
    a.commit()
    key = max((k for k, _ in a.store.snapshot().items(f"commitments/ports/{PORT}/channels/{ch_a}/".encode())))
    height = relayer.update(relayer.a, relayer.b)
    value = a.read(key, height)
    raw = a.prove(key, height)
    proof = decode_commitment_proof(raw)
    root = a.store.root(height)
    assert value is not None and verify_membership(JMT_SPEC, root, proof, key, value)
    n = 2000
    make = per_call_us(lambda: a.prove(key, height), n)
    baseline = per_call_us(lambda: verify_membership(JMT_SPEC, root, proof, key, value), n)
    through = per_call_us(lambda: b.clients.module.verify_membership(c.path.b_client, height, raw, key, value, b.now_ns), n)
    print(f"\n2. a packet commitment's proof in a store of {keys:,} keys ({len(raw)} bytes), {n:,} times each")
    print(f"{'what':44s} {'µs each':>12s}")
    print(f"{'make it (snapshot.prove + encode)':44s} {make:12.1f}")
    print(f"{'baseline: ics23.verify_membership, decoded':44s} {baseline:12.1f}")
    print(f"{'through the light client (decode + checks)':44s} {through:12.1f}")
    print(f"ratio light client / raw verification: {through / baseline:.2f}x")


if __name__ == "__main__":
    main()
