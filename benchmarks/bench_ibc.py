"""Benchmark of IBC between two Plurigrid ledgers: transfers per second end to end (in one process, and between
two lattices of three nodes over NATS), and what a proof costs.

Usage: .venv/bin/python benchmarks/bench_ibc.py [--transfers 2000] [--lattice-transfers 2000]

1. Transfers A -> B, each relayed whole (send, client update, receive with its proof, acknowledgement
   with its proof; every message its own block on its ledger): transfers per second, and per message.
2. Proofs of a packet commitment in a store of N keys: making one (`Store.snapshot().prove`), checking it raw
   (`ics23.verify_membership`, the baseline) and through the light client (status, consensus state, decode,
   verify), per proof.
3. Two lattices of three nexus nodes each (one `plurigrid node` process per lattice, one NATS server) and the
   relayer in this process over NATS: transfers sent in blocks of --batch, relayed until every one is
   acknowledged; packets per second from the first send to the last acknowledgement.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ibc.chains import Channels
from tests.ibc.lattices import two_lattices

from plurigrid.ibc import messages as msg
from plurigrid.ibc.connection import UNORDERED
from plurigrid.ibc.relayer import Relayer, Side, bring_up_to_date, open_path
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
    parser.add_argument("--lattice-transfers", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50, help="transfers per block in part 3")
    args = parser.parse_args()
    in_process(args.transfers)
    if args.lattice_transfers:
        over_nats(args.lattice_transfers, args.batch)


def in_process(transfers: int) -> None:
    c = Channels(UNORDERED)
    ch_a, ch_b = c.open()
    a, b = c.a, c.b
    a.execute(lambda: a.transfer.mint("alice", "credit", 10**12))
    a.commit()
    relayer = Relayer(Side(a, c.path.a_client, ch_a, PORT), Side(b, c.path.b_client, ch_b, PORT))
    t0 = time.perf_counter()
    for _ in range(transfers):
        a.execute(lambda: a.transfer.send(ch_a, "alice", "bob", "credit", 1, b.height + 1000, 0, a.now_ns))
        a.commit()
        relayer.relay()
    seconds = time.perf_counter() - t0
    messages = sum(relayer.delivered.values()) + transfers
    print(f"1. {transfers:,} transfers A -> B relayed whole, in one process")
    print(f"{'what':44s} {'value':>12s}")
    print(f"{'transfers per second':44s} {transfers / seconds:12,.0f}")
    print(f"{'messages (send, updates, recv, ack)':44s} {messages:12,d}")
    print(f"{'ms per message':44s} {seconds / messages * 1000:12.3f}")
    print(f"{'ledger heights (A, B)':44s} {f'{a.height:,} / {b.height:,}':>12s}")

    keys = len(list(a.store.snapshot().items(b"")))
    key = f"commitments/ports/{PORT}/channels/{ch_a}/sequences/1".encode()
    a.execute(lambda: a.transfer.send(ch_a, "alice", "bob", "credit", 1, b.height + 1000, 0, a.now_ns))
    a.commit()
    key = max((k for k, _ in a.store.snapshot().items(f"commitments/ports/{PORT}/channels/{ch_a}/".encode())))
    height = bring_up_to_date(a, b, c.path.b_client)
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


def over_nats(transfers: int, batch: int) -> None:
    with tempfile.TemporaryDirectory(prefix="plurigrid-bench-ibc-") as tmp, two_lattices(Path(tmp)) as (a, b):
        a.chain.submit([msg.issue("kiosk", "credit", 10**12)], a.member("kiosk"))
        b.chain.submit([])
        side_a, side_b = open_path(a.chain, b.chain)
        relayer = Relayer(side_a, side_b)
        sender = a.member("kiosk")
        t0 = time.perf_counter()
        for start in range(0, transfers, batch):
            sent = [msg.transfer(side_a.channel, "kiosk", "hh-s1", "credit", 1, 0, time.time_ns() + 3600 * 10**9)
                    for _ in range(min(batch, transfers - start))]
            assert all(r["code"] == "ok" for r in a.chain.submit(sent, sender))
            relayer.relay()
        relayer.clear()
        seconds = time.perf_counter() - t0
        received = b.chain.items(f"balances/hh-s1/transfer/{side_b.channel}/credit".encode())
        assert int(received[0][1]) == transfers and not a.chain.packet_commitments(PORT, side_a.channel)
        print(f"\n3. {transfers:,} transfers grid-a -> grid-b, two lattices of three nodes over NATS, blocks of {batch}")
        print(f"{'what':44s} {'value':>12s}")
        print(f"{'packets per second (send to acknowledgement)':44s} {transfers / seconds:12,.0f}")
        print(f"{'blocks (grid-a, grid-b)':44s} {f'{a.chain.height:,} / {b.chain.height:,}':>12s}")
        print(f"{'client updates':44s} {relayer.delivered['update']:12,d}")


if __name__ == "__main__":
    main()
