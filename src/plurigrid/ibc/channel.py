"""ICS-04 channel handshake and closing over an ICS-03 connection, each step proven to the other side.

A channel end is stored under `channelEnds/ports/{port}/channels/{channel}` with its three sequence
counters (send, receive, acknowledge) beside it; the counterparty's end is checked through the light
client of the connection, as in ibc-go's 04-channel keeper.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from dataclasses import dataclass, field, replace

from plurigrid.ibc.client import ACTIVE, canonical
from plurigrid.ibc.connection import OPEN as CONNECTION_OPEN
from plurigrid.ibc.connection import ConnectionEnd, ConnectionKeeper
from plurigrid.ibc.errors import IbcError

INIT, TRYOPEN, OPEN, CLOSED = "STATE_INIT", "STATE_TRYOPEN", "STATE_OPEN", "STATE_CLOSED"
NEXT_CHANNEL_SEQUENCE = b"nextChannelSequence"
SEQUENCES = ("nextSequenceSend", "nextSequenceRecv", "nextSequenceAck")


def channel_key(port: str, channel: str) -> bytes:
    return f"channelEnds/ports/{port}/channels/{channel}".encode()


def sequence_key(kind: str, port: str, channel: str) -> bytes:
    return f"{kind}/ports/{port}/channels/{channel}".encode()


@dataclass(frozen=True)
class ChannelCounterparty:
    port_id: str
    channel_id: str = ""


@dataclass(frozen=True)
class ChannelEnd:
    """One side's record of a channel: what the other side is shown."""

    state: str
    ordering: str
    counterparty: ChannelCounterparty
    connection_hops: tuple[str, ...]
    version: str

    def to_bytes(self) -> bytes:
        return canonical({"state": self.state, "ordering": self.ordering, "counterparty": self.counterparty.__dict__,
                          "connection_hops": list(self.connection_hops), "version": self.version})

    @classmethod
    def from_bytes(cls, raw: bytes) -> ChannelEnd:
        data = json.loads(raw)
        return cls(data["state"], data["ordering"], ChannelCounterparty(**data["counterparty"]),
                   tuple(data["connection_hops"]), data["version"])


@dataclass
class ChannelKeeper:
    connections: ConnectionKeeper
    store: MutableMapping[bytes, bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.store = self.connections.store

    def channel(self, port: str, channel: str) -> ChannelEnd:
        raw = self.store.get(channel_key(port, channel))
        if raw is None:
            raise IbcError("ErrChannelNotFound", f"channel {port}/{channel} not found")
        return ChannelEnd.from_bytes(raw)

    def _put(self, port: str, channel: str, end: ChannelEnd) -> None:
        self.store[channel_key(port, channel)] = end.to_bytes()

    def _open_connection(self, connection_id: str) -> ConnectionEnd:
        connection = self.connections.connection(connection_id)
        if connection.state != CONNECTION_OPEN:
            raise IbcError("ErrInvalidConnectionState", f"connection {connection_id} is {connection.state}, expected OPEN")
        return connection

    def _client_active(self, connection: ConnectionEnd, now_ns: int) -> None:
        status = self.connections.clients.status(connection.client_id, now_ns)
        if status != ACTIVE:
            raise IbcError("ErrClientNotActive", f"client {connection.client_id} status is {status}")

    @staticmethod
    def _ordering_supported(connection: ConnectionEnd, ordering: str) -> None:
        if len(connection.versions) != 1:
            raise IbcError("ErrInvalidVersion", "the connection's version is not negotiated yet")
        if ordering not in connection.versions[0].get("features", []):
            raise IbcError("ErrInvalidVersion", f"the connection does not support {ordering} channels")

    def _verify(self, connection: ConnectionEnd, port: str, channel: str, expected: ChannelEnd, proof: bytes,
                proof_height: int, now_ns: int) -> None:
        """The counterparty's channel end is `expected` at `proof_height`, by the connection's light client."""
        module = self.connections.clients.module
        if proof_height > module.latest_height(connection.client_id):
            raise IbcError("ErrInvalidHeight", f"proof height {proof_height} is above the client's latest height")
        try:
            module.consensus_state(connection.client_id, proof_height)
        except IbcError:
            raise IbcError("ErrInvalidHeight", f"no consensus state at proof height {proof_height}") from None
        try:
            module.verify_membership(connection.client_id, proof_height, proof, channel_key(port, channel), expected.to_bytes(),
                                     now_ns)
        except IbcError as err:
            raise IbcError("ErrInvalidProof", f"channel state verification failed: {err}") from None

    def _new_channel(self, port: str, end: ChannelEnd) -> str:
        sequence = int(self.store.get(NEXT_CHANNEL_SEQUENCE, b"0"))
        channel = f"channel-{sequence}"
        self._put(port, channel, end)
        for kind in SEQUENCES:
            self.store[sequence_key(kind, port, channel)] = b"1"
        self.store[NEXT_CHANNEL_SEQUENCE] = str(sequence + 1).encode()
        return channel

    def open_init(self, port: str, ordering: str, connection_hops: tuple[str, ...], counterparty_port: str, version: str,
                  now_ns: int) -> str:
        """ChanOpenInit: a channel end in INIT over a connection (which need not be open yet)."""
        connection = self.connections.connection(connection_hops[0])
        self._ordering_supported(connection, ordering)
        self._client_active(connection, now_ns)
        return self._new_channel(port, ChannelEnd(INIT, ordering, ChannelCounterparty(counterparty_port), connection_hops,
                                                  version))

    def open_try(self, port: str, ordering: str, connection_hops: tuple[str, ...], counterparty: ChannelCounterparty,
                 counterparty_version: str, version: str, proof_init: bytes, proof_height: int, now_ns: int) -> str:
        """ChanOpenTry: proves the counterparty's INIT end, then opens this side in TRYOPEN."""
        connection = self._open_connection(connection_hops[0])
        self._ordering_supported(connection, ordering)
        expected = ChannelEnd(INIT, ordering, ChannelCounterparty(port), (connection.counterparty.connection_id,),
                              counterparty_version)
        self._verify(connection, counterparty.port_id, counterparty.channel_id, expected, proof_init, proof_height, now_ns)
        return self._new_channel(port, ChannelEnd(TRYOPEN, ordering, counterparty, connection_hops, version))

    def open_ack(self, port: str, channel: str, counterparty_version: str, counterparty_channel: str, proof_try: bytes,
                 proof_height: int, now_ns: int) -> None:
        """ChanOpenAck: proves the counterparty's TRYOPEN end, then opens this side."""
        end = self.channel(port, channel)
        if end.state != INIT:
            raise IbcError("ErrInvalidChannelState", f"channel {port}/{channel} is {end.state}, expected {INIT}")
        connection = self._open_connection(end.connection_hops[0])
        expected = ChannelEnd(TRYOPEN, end.ordering, ChannelCounterparty(port, channel), (connection.counterparty.connection_id,),
                              counterparty_version)
        self._verify(connection, end.counterparty.port_id, counterparty_channel, expected, proof_try, proof_height, now_ns)
        self._put(port, channel, replace(end, state=OPEN, version=counterparty_version,
                                         counterparty=replace(end.counterparty, channel_id=counterparty_channel)))

    def open_confirm(self, port: str, channel: str, proof_ack: bytes, proof_height: int, now_ns: int) -> None:
        """ChanOpenConfirm: proves the counterparty's end is OPEN, then opens this side."""
        end = self.channel(port, channel)
        if end.state != TRYOPEN:
            raise IbcError("ErrInvalidChannelState", f"channel {port}/{channel} is {end.state}, expected {TRYOPEN}")
        connection = self._open_connection(end.connection_hops[0])
        self._verify(connection, end.counterparty.port_id, end.counterparty.channel_id, self._mirror(end, OPEN, port, channel,
                                                                                                       connection),
                     proof_ack, proof_height, now_ns)
        self._put(port, channel, replace(end, state=OPEN))

    def close_init(self, port: str, channel: str, now_ns: int) -> None:
        """ChanCloseInit: closes this side (no proof needed)."""
        end = self.channel(port, channel)
        if end.state == CLOSED:
            raise IbcError("ErrInvalidChannelState", f"channel {port}/{channel} is already closed")
        connection = self.connections.connection(end.connection_hops[0])
        self._client_active(connection, now_ns)
        if connection.state != CONNECTION_OPEN:
            raise IbcError("ErrInvalidConnectionState", f"connection {end.connection_hops[0]} is {connection.state}, expected OPEN")
        self._put(port, channel, replace(end, state=CLOSED))

    def close_confirm(self, port: str, channel: str, proof_init: bytes, proof_height: int, now_ns: int) -> None:
        """ChanCloseConfirm: proves the counterparty closed its end, then closes this side."""
        end = self.channel(port, channel)
        if end.state == CLOSED:
            raise IbcError("ErrInvalidChannelState", f"channel {port}/{channel} is already closed")
        connection = self._open_connection(end.connection_hops[0])
        self._verify(connection, end.counterparty.port_id, end.counterparty.channel_id,
                     self._mirror(end, CLOSED, port, channel, connection), proof_init, proof_height, now_ns)
        self._put(port, channel, replace(end, state=CLOSED))

    @staticmethod
    def _mirror(end: ChannelEnd, state: str, port: str, channel: str, connection: ConnectionEnd) -> ChannelEnd:
        """What the counterparty's end must be when it is in `state`: this end seen from the other side."""
        return ChannelEnd(state, end.ordering, ChannelCounterparty(port, channel), (connection.counterparty.connection_id,),
                          end.version)
