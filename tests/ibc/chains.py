"""Two Plurigrid ledgers in one process, as ibc-go's testing coordinator: each commits its Merkle store,
its members sign headers of it, and each keeps a light client of the other."""

from __future__ import annotations

from dataclasses import replace

from plurigrid.ibc.channel import ChannelCounterparty, channel_key
from plurigrid.ibc.client import CLIENT_TYPE, ClientState
from plurigrid.ibc.connection import DEFAULT_VERSION, Counterparty, connection_key
from plurigrid.ibc.endpoint import LedgerEnd
from plurigrid.state.identity import Identity
from plurigrid.state.store import Store

HOUR_NS = 3600 * 10**9
T0 = 1_700_000_000 * 10**9
TRUSTING_NS = 14 * 24 * HOUR_NS


class Clock:
    """The time both ledgers of a test share: each block anywhere takes an hour (as two grids share wall time)."""

    def __init__(self) -> None:
        self.now_ns = T0

    def __call__(self, height: int) -> int:
        return self.now_ns + HOUR_NS


class Chain(LedgerEnd):
    """A ledger in memory with three members, its blocks on a shared clock (its own, if none is given)."""

    def __init__(self, chain_id: str, seed: int, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        super().__init__(chain_id, [Identity.from_seed(bytes([seed + i]) * 32) for i in range(3)], Store(":memory:"), self.clock)

    def commit(self) -> int:
        height = super().commit()
        self.clock.now_ns = self.times[height]
        return height


class Path:
    """Chain A and chain B, each with a client of the other (created and committed)."""

    def __init__(self) -> None:
        clock = Clock()
        self.a, self.b = Chain("grid-a", 10, clock), Chain("grid-b", 50, clock)
        self.a_client = self.a.clients.create_client(CLIENT_TYPE, ClientState(self.b.chain_id, TRUSTING_NS, self.b.height),
                                                     self.b.consensus_state(), self.a.now_ns)
        self.b_client = self.b.clients.create_client(CLIENT_TYPE, ClientState(self.a.chain_id, TRUSTING_NS, self.a.height),
                                                     self.a.consensus_state(), self.b.now_ns)
        self.a.commit()
        self.b.commit()

    def client_of(self, chain: Chain) -> tuple[Chain, str]:
        """The other chain and its client of `chain`."""
        return (self.b, self.b_client) if chain is self.a else (self.a, self.a_client)

    def update(self, chain: Chain) -> int:
        """Brings the other chain's client of `chain` up to `chain`'s latest height; returns that height."""
        other, client_id = self.client_of(chain)
        latest = other.clients.module.latest_height(client_id)
        if chain.height > latest:
            other.clients.update_client(client_id, chain.header(latest), other.now_ns)
        return chain.height

    def open_connection(self) -> tuple[str, str]:
        """The whole ICS-03 handshake; returns (A's connection id, B's)."""
        conn_a = init(self)
        conn_b = try_open(self, conn_a)
        ack(self, conn_a, conn_b)
        confirm(self, conn_b, conn_a)
        return conn_a, conn_b


# the four connection handshake steps, each committed on its chain after updating the other's client of it
def init(path: Path, version: dict | None = None, delay: int = 0, client: str | None = None) -> str:
    conn = path.a.connections.open_init(client or path.a_client, Counterparty(path.b_client, "connection-9"), version, delay,
                                        path.a.now_ns)
    path.a.commit()
    return conn


def try_open(path: Path, conn_a: str, versions: list[dict] | None = None, delay: int = 0,
             counterparty_client: str | None = None) -> str:
    height = path.update(path.a)
    proof = path.a.prove(connection_key(conn_a), height)
    conn_b = path.b.connections.open_try(Counterparty(counterparty_client or path.a_client, conn_a), delay, path.b_client,
                                         [DEFAULT_VERSION] if versions is None else versions, proof, height, path.b.now_ns)
    path.b.commit()
    return conn_b


def ack(path: Path, conn_a: str, conn_b: str, version: dict = DEFAULT_VERSION, proven: str | None = None) -> None:
    height = path.update(path.b)
    proof = path.b.prove(connection_key(proven or conn_b), height)
    path.a.connections.open_ack(conn_a, conn_b, version, proof, height, path.a.now_ns)
    path.a.commit()


def confirm(path: Path, conn_b: str, conn_a: str) -> None:
    height = path.update(path.a)
    path.b.connections.open_confirm(conn_b, path.a.prove(connection_key(conn_a), height), height, path.b.now_ns)
    path.b.commit()


PORT = "transfer"
VERSION = "ics20-1"


class Channels:
    """A path with an open connection, and the channel steps, each committed and proven as a relayer would."""

    def __init__(self, ordering: str) -> None:
        self.path = Path()
        self.conn_a, self.conn_b = self.path.open_connection()
        self.ordering = ordering
        self.a, self.b = self.path.a, self.path.b

    def init(self, hops: tuple[str, ...] | None = None) -> str:
        ch = self.a.channels.open_init(PORT, self.ordering, hops or (self.conn_a,), PORT, VERSION, self.a.now_ns)
        self.a.commit()
        return ch

    def try_open(self, ch_a: str, hops: tuple[str, ...] | None = None, height_ahead: int = 0, proven: str | None = None) -> str:
        height = self.path.update(self.a)
        proof = self.a.prove(channel_key(PORT, proven or ch_a), height)
        ch_b = self.b.channels.open_try(PORT, self.ordering, hops or (self.conn_b,), ChannelCounterparty(PORT, ch_a), VERSION,
                                        VERSION, proof, height + height_ahead, self.b.now_ns)
        self.b.commit()
        return ch_b

    def ack(self, ch_a: str, ch_b: str, counterparty_channel: str | None = None, height_ahead: int = 0) -> None:
        height = self.path.update(self.b)
        proof = self.b.prove(channel_key(PORT, ch_b), height)
        self.a.channels.open_ack(PORT, ch_a, VERSION, counterparty_channel or ch_b, proof, height + height_ahead, self.a.now_ns)
        self.a.commit()

    def confirm(self, ch_b: str, ch_a: str, height_ahead: int = 0) -> None:
        height = self.path.update(self.a)
        proof = self.a.prove(channel_key(PORT, ch_a), height)
        self.b.channels.open_confirm(PORT, ch_b, proof, height + height_ahead, self.b.now_ns)
        self.b.commit()

    def open(self) -> tuple[str, str]:
        ch_a = self.init()
        ch_b = self.try_open(ch_a)
        self.ack(ch_a, ch_b)
        self.confirm(ch_b, ch_a)
        return ch_a, ch_b

    def close_init(self, ch_a: str) -> None:
        self.a.channels.close_init(PORT, ch_a, self.a.now_ns)
        self.a.commit()

    def close_confirm(self, ch_b: str, ch_a: str, height_ahead: int = 0) -> None:
        height = self.path.update(self.a)
        proof = self.a.prove(channel_key(PORT, ch_a), height)
        self.b.channels.close_confirm(PORT, ch_b, proof, height + height_ahead, self.b.now_ns)
        self.b.commit()


def set_connection(chain: Chain, conn: str, **changes: object) -> None:
    chain.connections._put(conn, replace(chain.connections.connection(conn), **changes))


def set_channel(chain: Chain, ch: str, **changes: object) -> None:
    chain.channels._put(PORT, ch, replace(chain.channels.channel(PORT, ch), **changes))
