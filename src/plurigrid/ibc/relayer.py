"""The relayer: moves packets, acknowledgements and timeouts between two chains over one channel, keeping
each side's light client of the other up to date; and opens the path (clients, connection, channel).

It keeps no state of its own. Every pass asks the two chains what is pending (ibc-go's queries: the
packet commitments still stored on a side, which of them the other side has not received, the
acknowledgements it wrote), so a relayer killed at any moment and started again loses nothing; and a
message it delivers twice is refused by the receipts and sequences (ErrNoOpMsg), so nothing is received
twice. A chain is anything with the `Chain` interface: a ledger in this process (`LedgerEnd`) or a
lattice reached over NATS (`plurigrid.ibc.remote.RemoteChain`). Messages go as data
(`plurigrid.ibc.messages`), batched: one client update and every packet message it proves, per block.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

from plurigrid.ibc import messages as msg
from plurigrid.ibc.channel import OPEN as CHANNEL_OPEN
from plurigrid.ibc.channel import ChannelEnd, channel_key, sequence_key
from plurigrid.ibc.client import ClientState, ConsensusState, Header, client_state_key
from plurigrid.ibc.connection import DEFAULT_VERSION, UNORDERED, connection_key
from plurigrid.ibc.errors import IbcError
from plurigrid.ibc.packet import Packet, ack_key, commitment_key, receipt_key
from plurigrid.ibc.transfer import PORT

TRUSTING_PERIOD_NS = 14 * 24 * 3600 * 10**9
VERSION = "ics20-1"


class Chain(Protocol):
    """What a relayer needs of a chain: its latest height, proofs and headers, ibc-go's packet queries, and a
    way to submit messages (each batch one block)."""

    chain_id: str

    @property
    def height(self) -> int: ...

    def time_at(self, height: int) -> int: ...

    def consensus_state(self) -> ConsensusState: ...

    def header(self, trusted_height: int) -> Header: ...

    def prove(self, key: bytes, height: int | None = None) -> bytes: ...

    def read(self, key: bytes, height: int | None = None) -> bytes | None: ...

    def packet_commitments(self, port: str, channel: str, height: int | None = None) -> list[Packet]: ...

    def unreceived_packets(self, port: str, channel: str, sequences: list[int], height: int | None = None) -> list[int]: ...

    def packet_acknowledgements(self, port: str, channel: str, sequences: list[int],
                                height: int | None = None) -> dict[int, bytes]: ...

    def submit(self, messages: list) -> list[dict]: ...


class Killed(Exception):
    """Raised by a relayer told to stop after some messages (a crash, for tests of restarts)."""


@dataclass
class Side:
    end: Chain
    client: str  # this chain's client of the other
    channel: str
    port: str = PORT


def _check(result: dict, kind: str) -> None:
    if result["code"] != "ok":
        raise IbcError(result["code"], result.get("log", "").split(": ", 1)[-1] or kind)


@dataclass
class Relayer:
    a: Side
    b: Side
    max_messages: int | None = None  # stop (raise Killed) after this many messages: a crash at a chosen moment
    delivered: dict[str, int] = field(default_factory=lambda: {"recv": 0, "ack": 0, "timeout": 0, "update": 0, "noop": 0})

    def _submit(self, end: Chain, batch: list[tuple[str, dict]]) -> None:
        """Submits the batch as one block; a crash (max_messages) sends only the messages before it."""
        if not batch:
            return
        killed = None
        if self.max_messages is not None:
            room = self.max_messages - sum(self.delivered.values())
            if room < len(batch):
                batch, killed = batch[:max(room, 0)], Killed(f"killed after {self.max_messages} messages")
        if batch:
            for (kind, _), result in zip(batch, end.submit([m for _, m in batch])):
                if result["code"] == "ok":
                    self.delivered[kind] += 1
                elif result["code"] == "ErrNoOpMsg" or (kind == "recv" and result["code"] == "ErrTimeoutElapsed"):
                    self.delivered["noop"] += 1  # done already, or to be timed out on the next pass
                else:
                    _check(result, kind)
        if killed is not None:
            raise killed

    def _update(self, source: Side, target: Side) -> tuple[int, list[tuple[str, dict]]]:
        """The height `target`'s client of `source` will have, and the update message that brings it there (if any)."""
        latest = client_height(target.end, target.client)
        if source.end.height <= latest:
            return latest, []
        header = source.end.header(latest)
        return header.height, [("update", msg.update_client(target.client, header))]

    def relay(self) -> int:
        """One pass in both directions; returns the number of packet messages delivered (0: nothing pending)."""
        before = self.delivered["recv"] + self.delivered["ack"] + self.delivered["timeout"]
        for source, target in ((self.a, self.b), (self.b, self.a)):
            self._packets(source, target)
            self._back(source, target)
        return self.delivered["recv"] + self.delivered["ack"] + self.delivered["timeout"] - before

    def clear(self, passes: int = 100) -> None:
        """Relays until nothing is pending."""
        for _ in range(passes):
            if not self.relay():
                return
        raise RuntimeError(f"still relaying after {passes} passes")

    def pending(self, source: Side) -> list[Packet]:
        """Packets `source` sent that are still committed there (neither acknowledged nor timed out)."""
        return source.end.packet_commitments(source.port, source.channel)

    def _packets(self, source: Side, target: Side) -> None:
        """Receives on `target` what `source` sent and `target` has neither received nor let time out."""
        pending = self.pending(source)
        if not pending:
            return
        target_height = target.end.height
        target_time = target.end.time_at(target_height)
        unreceived = set(target.end.unreceived_packets(target.port, target.channel, [p.sequence for p in pending]))
        due = [p for p in pending if p.sequence in unreceived and not p.timed_out(target_height, target_time)]
        if not due:
            return
        height, batch = self._update(source, target)
        for p in due:
            proof = source.end.prove(commitment_key(source.port, source.channel, p.sequence), height)
            batch.append(("recv", msg.recv_packet(p, proof, height)))
        self._submit(target.end, batch)

    def _back(self, source: Side, target: Side) -> None:
        """Acknowledges on `source` what `target` acknowledged, and times out what `target` never received in time."""
        pending = self.pending(source)
        if not pending:
            return
        height, batch = self._update(target, source)
        sequences = [p.sequence for p in pending]
        acks = target.end.packet_acknowledgements(target.port, target.channel, sequences, height)
        unreceived = set(target.end.unreceived_packets(target.port, target.channel, sequences, height))
        target_time = target.end.time_at(height)
        ordered = channel_end(target.end, target.port, target.channel, height).ordering != UNORDERED
        for p in pending:
            if p.sequence in acks:
                proof = target.end.prove(ack_key(target.port, target.channel, p.sequence), height)
                batch.append(("ack", msg.acknowledgement(p, acks[p.sequence], proof, height)))
            elif p.sequence in unreceived and p.timed_out(height, target_time):
                if ordered:
                    key = sequence_key("nextSequenceRecv", target.port, target.channel)
                    next_recv = int(target.end.read(key, height) or b"1")
                else:
                    key, next_recv = receipt_key(target.port, target.channel, p.sequence), p.sequence
                batch.append(("timeout", msg.timeout(p, target.end.prove(key, height), height, next_recv)))
        if len(batch) > (1 if batch and batch[0][0] == "update" else 0):
            self._submit(source.end, batch)


def client_height(chain: Chain, client_id: str) -> int:
    raw = chain.read(client_state_key(client_id))
    if raw is None:
        raise IbcError("ErrClientNotFound", f"client state not found for {client_id}")
    return int(json.loads(raw)["latest_height"])


def channel_end(chain: Chain, port: str, channel: str, height: int | None = None) -> ChannelEnd:
    raw = chain.read(channel_key(port, channel), height)
    if raw is None:
        raise IbcError("ErrChannelNotFound", f"channel {port}/{channel} not found on {chain.chain_id}")
    return ChannelEnd.from_bytes(raw)


# ---------------------------------------------------------------- opening a path
def _one(chain: Chain, message: dict) -> dict:
    result = chain.submit([message])[0]
    _check(result, message["@type"])
    return result


def bring_up_to_date(source: Chain, target: Chain, client: str) -> int:
    """Brings `target`'s client of `source` to `source`'s latest height (its own block); returns that height."""
    latest = client_height(target, client)
    if source.height > latest:
        header = source.header(latest)
        _one(target, msg.update_client(client, header))
        return header.height
    return latest


def create_client(host: Chain, counterparty: Chain, trusting_period_ns: int = TRUSTING_PERIOD_NS) -> str:
    """A client on `host` of `counterparty`, trusting its latest consensus state."""
    state = counterparty.consensus_state()
    client_state = ClientState(counterparty.chain_id, trusting_period_ns, counterparty.height)
    return str(_one(host, {"@type": "MsgCreateClient", "client_state": client_state.to_json(),
                           "consensus_state": state.to_json()})["client_id"])


def open_path(a: Chain, b: Chain, ordering: str = UNORDERED, port: str = PORT, version: str = VERSION) -> tuple[Side, Side]:
    """Clients on both chains, a connection (ICS-03's four steps) and a channel (ICS-04's four), each step proven."""
    client_a, client_b = create_client(a, b), create_client(b, a)
    conn_a = str(_one(a, {"@type": "MsgConnectionOpenInit", "client_id": client_a,
                          "counterparty": {"client_id": client_b}})["connection_id"])
    h = bring_up_to_date(a, b, client_b)
    conn_b = str(_one(b, {"@type": "MsgConnectionOpenTry", "client_id": client_b,
                          "counterparty": {"client_id": client_a, "connection_id": conn_a},
                          "counterparty_versions": [DEFAULT_VERSION], "proof_init": msg.b64(a.prove(connection_key(conn_a), h)),
                          "proof_height": h})["connection_id"])
    h = bring_up_to_date(b, a, client_a)
    version_b = json.loads(b.read(connection_key(conn_b), h) or b"{}")["versions"][0]
    _one(a, {"@type": "MsgConnectionOpenAck", "connection_id": conn_a, "counterparty_connection_id": conn_b,
             "version": version_b, "proof_try": msg.b64(b.prove(connection_key(conn_b), h)), "proof_height": h})
    h = bring_up_to_date(a, b, client_b)
    _one(b, {"@type": "MsgConnectionOpenConfirm", "connection_id": conn_b, "proof_ack": msg.b64(a.prove(connection_key(conn_a), h)),
             "proof_height": h})
    ch_a = str(_one(a, {"@type": "MsgChannelOpenInit", "port_id": port, "channel": {
        "ordering": ordering, "connection_hops": [conn_a], "counterparty": {"port_id": port}, "version": version}})["channel_id"])
    h = bring_up_to_date(a, b, client_b)
    ch_b = str(_one(b, {"@type": "MsgChannelOpenTry", "port_id": port, "channel": {
        "ordering": ordering, "connection_hops": [conn_b], "counterparty": {"port_id": port, "channel_id": ch_a},
        "version": version}, "counterparty_version": version, "proof_init": msg.b64(a.prove(channel_key(port, ch_a), h)),
        "proof_height": h})["channel_id"])
    h = bring_up_to_date(b, a, client_a)
    _one(a, {"@type": "MsgChannelOpenAck", "port_id": port, "channel_id": ch_a, "counterparty_version": version,
             "counterparty_channel_id": ch_b, "proof_try": msg.b64(b.prove(channel_key(port, ch_b), h)), "proof_height": h})
    h = bring_up_to_date(a, b, client_b)
    _one(b, {"@type": "MsgChannelOpenConfirm", "port_id": port, "channel_id": ch_b,
             "proof_ack": msg.b64(a.prove(channel_key(port, ch_a), h)), "proof_height": h})
    return Side(a, client_a, ch_a, port), Side(b, client_b, ch_b, port)


def find_path(a: Chain, b: Chain, port: str = PORT) -> tuple[Side, Side] | None:
    """An OPEN channel on `port` between the two chains (the newest), as a restarted relayer finds its path again."""
    for channel_id in reversed(channels(a, port)):
        end = channel_end(a, port, channel_id)
        if end.state != CHANNEL_OPEN:
            continue
        conn = json.loads(a.read(connection_key(end.connection_hops[0])) or b"{}")
        client_a = conn.get("client_id", "")
        raw = a.read(client_state_key(client_a))
        if raw is None or json.loads(raw)["chain_id"] != b.chain_id:
            continue
        try:
            other = channel_end(b, end.counterparty.port_id, end.counterparty.channel_id)
        except IbcError:
            continue
        conn_b = json.loads(b.read(connection_key(other.connection_hops[0])) or b"{}")
        if other.state == CHANNEL_OPEN and other.counterparty.channel_id == channel_id:
            return Side(a, client_a, channel_id, port), Side(b, conn_b["client_id"], end.counterparty.channel_id, port)
    return None


def channels(chain: Chain, port: str) -> list[str]:
    """The channel ids on `port`, oldest first (channel-0, channel-1, …)."""
    count = int(chain.read(b"nextChannelSequence") or b"0")
    return [f"channel-{n}" for n in range(count) if chain.read(channel_key(port, f"channel-{n}")) is not None]
