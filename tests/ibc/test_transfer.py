"""Credits moved between two ledgers by the transfer application and a relayer that is killed and restarted.

After hundreds of transfers back and forth, some timing out, with the relayer killed mid-flight again and
again: every escrow equals the vouchers outstanding, each ledger's own credits are conserved, nothing is
left in flight, and nothing was received twice.
"""

from __future__ import annotations

import random

import pytest

from plurigrid.ibc.connection import UNORDERED
from plurigrid.ibc.errors import IbcError
from plurigrid.ibc.packet import commitment_key, receipt_key
from plurigrid.ibc.relayer import Killed, Relayer, Side
from plurigrid.ibc.transfer import PORT, escrow_account
from tests.ibc.chains import Channels, LedgerEnd

SEED = 7
TRANSFERS = 1000
MINTED = 1_000_000


class Grids(Channels):
    """Two ledgers with a transfer channel between them; alice holds A's credits, bob B's."""

    def __init__(self) -> None:
        super().__init__(UNORDERED)
        self.ch_a, self.ch_b = self.open()
        self.side_a = Side(self.a, self.path.a_client, self.ch_a, PORT)
        self.side_b = Side(self.b, self.path.b_client, self.ch_b, PORT)
        for end, who in ((self.a, "alice"), (self.b, "bob")):
            end.execute(lambda end=end, who=who: end.transfer.mint(who, "credit", MINTED))
            end.commit()

    def relayer(self, max_messages: int | None = None) -> Relayer:
        return Relayer(self.side_a, self.side_b, max_messages)

    def send(self, end: LedgerEnd, channel: str, sender: str, receiver: str, denom: str, amount: int, timeout_height: int) -> None:
        end.execute(lambda: end.transfer.send(channel, sender, receiver, denom, amount, timeout_height, 0, end.now_ns))
        end.commit()

    def in_flight(self) -> int:
        relayer = self.relayer()
        return len(relayer.pending(self.side_a)) + len(relayer.pending(self.side_b))

    def settle(self) -> None:
        """Relays (a fresh relayer each time) until nothing is in flight; blocks go by meanwhile."""
        for _ in range(200):
            if not self.in_flight():
                return
            if not self.relayer().relay():
                self.a.commit()
                self.b.commit()
        raise AssertionError("packets still in flight")


def balances(end: LedgerEnd) -> dict[tuple[str, str], int]:
    return {tuple(k.decode().split("/", 1)[1].split("/", 1)): int(v)  # type: ignore[misc]
            for k, v in end.store.snapshot().items(b"balances/")}


def test_credits_go_back_and_forth_through_crashes_and_timeouts() -> None:
    g = Grids()
    rng = random.Random(SEED)
    voucher_on_b, voucher_on_a = f"{PORT}/{g.ch_b}/credit", f"{PORT}/{g.ch_a}/credit"
    killed = timeouts_planned = 0
    for n in range(TRANSFERS):
        forward = rng.random() < 0.5
        src, dst, channel = (g.a, g.b, g.ch_a) if forward else (g.b, g.a, g.ch_b)
        me, you = ("alice", "bob") if forward else ("bob", "alice")
        held = {denom: amount for (who, denom), amount in balances(src).items() if who == me}
        denom = rng.choice(sorted(held))
        amount = rng.randint(1, max(1, held[denom] // 10))
        near = rng.random() < 0.1
        timeout_height = dst.height + 1 if near else dst.height + 1000
        timeouts_planned += near
        g.send(src, channel, me, you, denom, amount, timeout_height)
        if near:  # the destination moves on before the relayer gets there
            dst.commit()
            dst.commit()
        if n % 7 == 0:
            try:
                g.relayer(max_messages=rng.randint(1, 6)).relay()
            except Killed:
                killed += 1
        elif n % 3 == 0:
            g.relayer().relay()
    g.settle()

    a, b = balances(g.a), balances(g.b)
    escrow_a, escrow_b = escrow_account(PORT, g.ch_a), escrow_account(PORT, g.ch_b)
    # every escrow equals the vouchers outstanding on the other ledger
    assert a.get((escrow_a, "credit"), 0) == sum(v for (_, d), v in b.items() if d == voucher_on_b)
    assert b.get((escrow_b, "credit"), 0) == sum(v for (_, d), v in a.items() if d == voucher_on_a)
    # each ledger's own credits are conserved (held or escrowed)
    assert sum(v for (_, d), v in a.items() if d == "credit") == MINTED
    assert sum(v for (_, d), v in b.items() if d == "credit") == MINTED
    assert a.get((escrow_a, "credit"), 0) > 0 and b.get((escrow_b, "credit"), 0) > 0  # credits did cross
    assert killed >= 10 and timeouts_planned >= 10
    # nothing in flight: every packet was acknowledged or timed out, on both sides
    for end, channel in ((g.a, g.ch_a), (g.b, g.ch_b)):
        assert not list(end.store.snapshot().items(f"commitments/ports/{PORT}/channels/{channel}/".encode()))
    # a timed-out packet was never received: the receipts are exactly the packets acknowledged
    for src, dst, ch_src, ch_dst in ((g.a, g.b, g.ch_a, g.ch_b), (g.b, g.a, g.ch_b, g.ch_a)):
        sent = len(src.logged(f"sent/ports/{PORT}/channels/{ch_src}/".encode()))
        receipts = len(list(dst.store.snapshot().items(f"receipts/ports/{PORT}/channels/{ch_dst}/".encode())))
        acks = len(dst.logged(f"written-acks/ports/{PORT}/channels/{ch_dst}/".encode()))
        assert receipts == acks and 0 < receipts < sent


def test_replays_forgeries_and_thin_headers_are_refused() -> None:
    g = Grids()
    g.send(g.a, g.ch_a, "alice", "bob", "credit", 500, g.b.height + 1000)
    relayer = g.relayer()
    relayer.relay()
    assert relayer.pending(g.side_a) == []  # received and acknowledged
    # replay the packet with a valid proof of its (still retained) commitment: refused, nothing changes
    from plurigrid.ibc.packet import Packet

    sent = Packet.from_bytes(g.a.logged(f"sent/ports/{PORT}/channels/{g.ch_a}/".encode())[0][1])
    proof_height = g.b.clients.module.latest_height(g.path.b_client)
    proof = g.a.prove(commitment_key(PORT, g.ch_a, sent.sequence), proof_height)
    for forged, code in ((sent, "ErrNoOpMsg"), (Packet(**{**sent.__dict__, "data": sent.data.replace(b"500", b"900")}),
                                                 "ErrInvalidProof")):
        with pytest.raises(IbcError) as err:
            g.b.execute(lambda forged=forged: g.b.packets.receive(forged, proof, proof_height, g.b.block_height,
                                                                  g.b.block_time_ns, g.b.now_ns))
        assert err.value.code == code
    g.b.commit()
    assert balances(g.b)[("bob", f"{PORT}/{g.ch_b}/credit")] == 500
    assert g.b.read(receipt_key(PORT, g.ch_b, sent.sequence)) is not None
    # a header of A signed by one of its three members does not move B's client
    g.a.commit()
    thin = g.a.header(g.b.clients.module.latest_height(g.path.b_client), signers=g.a.members[:1])
    with pytest.raises(IbcError, match="signed by 1 of 3"):
        g.b.clients.update_client(g.path.b_client, thin, g.b.now_ns)


def test_an_error_acknowledgement_refunds_the_sender() -> None:
    """Vouchers sent home beyond what the home escrow holds (forged on the way) come back as an error ack: refunded."""
    g = Grids()
    g.send(g.a, g.ch_a, "alice", "bob", "credit", 100, g.b.height + 1000)
    g.settle()
    voucher = f"{PORT}/{g.ch_b}/credit"
    g.b.execute(lambda: g.b.transfer.mint("bob", voucher, 50))  # vouchers with no escrow behind them
    g.b.commit()
    g.send(g.b, g.ch_b, "bob", "alice", voucher, 150, g.a.height + 1000)
    g.settle()
    assert balances(g.b)[("bob", voucher)] == 150  # refunded: A's escrow holds only 100
    assert balances(g.a)[("alice", "credit")] == MINTED - 100
