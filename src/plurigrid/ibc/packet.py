"""ICS-04 packets: send (a commitment under the ICS-24 path), receive (proof of that commitment; receipts or
the next receive sequence make delivery exactly-once), write an acknowledgement, acknowledge, and time out
(by height or timestamp, or because the channel closed), as ibc-go's 04-channel keeper does.

Commitments use ibc-go's bytes: sha256(timeout timestamp ‖ revision 0 ‖ timeout height ‖ sha256(data)) for a
packet, sha256(ack) for an acknowledgement, so the values a proof shows are the ones a Cosmos chain stores.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import MutableMapping
from dataclasses import dataclass, field, replace

from plurigrid.ibc.channel import CLOSED, OPEN, ChannelCounterparty, ChannelEnd, ChannelKeeper, channel_key, sequence_key
from plurigrid.ibc.client import ACTIVE, canonical
from plurigrid.ibc.connection import OPEN as CONNECTION_OPEN
from plurigrid.ibc.connection import ORDERED, ConnectionEnd
from plurigrid.ibc.errors import IbcError

RECEIPT = b"\x01"


@dataclass(frozen=True)
class Packet:
    sequence: int
    source_port: str
    source_channel: str
    destination_port: str
    destination_channel: str
    data: bytes
    timeout_height: int = 0  # a height of the destination; 0: none
    timeout_timestamp_ns: int = 0  # a time of the destination; 0: none

    def to_bytes(self) -> bytes:
        return canonical({**self.__dict__, "data": self.data.hex()})

    @classmethod
    def from_bytes(cls, raw: bytes) -> Packet:
        fields = json.loads(raw)
        return cls(**{**fields, "data": bytes.fromhex(fields["data"])})

    def commitment(self) -> bytes:
        body = struct.pack(">QQQ", self.timeout_timestamp_ns, 0, self.timeout_height) + hashlib.sha256(self.data).digest()
        return hashlib.sha256(body).digest()

    def timed_out(self, height: int, time_ns: int) -> bool:
        """Whether the destination at `height` and `time_ns` is past this packet's timeout."""
        return (self.timeout_height != 0 and height >= self.timeout_height) or \
            (self.timeout_timestamp_ns != 0 and time_ns >= self.timeout_timestamp_ns)


def _path(kind: str, port: str, channel: str, sequence: int) -> bytes:
    return f"{kind}/ports/{port}/channels/{channel}/sequences/{sequence}".encode()


def commitment_key(port: str, channel: str, sequence: int) -> bytes:
    return _path("commitments", port, channel, sequence)


def receipt_key(port: str, channel: str, sequence: int) -> bytes:
    return _path("receipts", port, channel, sequence)


def ack_key(port: str, channel: str, sequence: int) -> bytes:
    return _path("acks", port, channel, sequence)


def ack_commitment(ack: bytes) -> bytes:
    return hashlib.sha256(ack).digest()


def sent_log_key(port: str, channel: str, sequence: int) -> bytes:
    """Where the side log keeps a sent packet whole (the commitment alone cannot be relayed)."""
    return _path("sent", port, channel, sequence)


def ack_log_key(port: str, channel: str, sequence: int) -> bytes:
    return _path("written-acks", port, channel, sequence)


@dataclass
class PacketKeeper:
    channels: ChannelKeeper
    log: MutableMapping[bytes, bytes] | None = None  # where sent packets and written acks are recorded for relayers
    store: MutableMapping[bytes, bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.store = self.channels.store

    # ---------------------------------------------------------------- shared checks
    def _channel(self, port: str, channel: str, open_only: bool = True) -> ChannelEnd:
        end = self.channels.channel(port, channel)
        if open_only and end.state != OPEN:
            raise IbcError("ErrInvalidChannelState", f"channel {port}/{channel} is {end.state}, expected {OPEN}")
        return end

    def _connection(self, end: ChannelEnd, open_only: bool = True) -> ConnectionEnd:
        connection = self.channels.connections.connection(end.connection_hops[0])
        if open_only and connection.state != CONNECTION_OPEN:
            raise IbcError("ErrInvalidConnectionState", f"connection {end.connection_hops[0]} is {connection.state}, expected OPEN")
        return connection

    @staticmethod
    def _from_counterparty(packet: Packet, end: ChannelEnd, port: str, channel: str) -> None:
        if (port, channel) != (end.counterparty.port_id, end.counterparty.channel_id):
            raise IbcError("ErrInvalidPacket", f"packet {packet.sequence} names {port}/{channel}; the channel's counterparty is "
                           f"{end.counterparty.port_id}/{end.counterparty.channel_id}")

    def _sequence(self, kind: str, port: str, channel: str, code: str) -> int:
        raw = self.store.get(sequence_key(kind, port, channel))
        if raw is None:
            raise IbcError(code, f"{kind} not found for {port}/{channel}")
        return int(raw)

    def _prove(self, connection: ConnectionEnd, height: int, proof: bytes, key: bytes, value: bytes | None, now_ns: int) -> None:
        """The counterparty holds key -> value (or, with None, no key) at `height`; ErrInvalidProof if not shown."""
        module = self.channels.connections.clients.module
        try:
            if value is None:
                module.verify_non_membership(connection.client_id, height, proof, key, now_ns)
            else:
                module.verify_membership(connection.client_id, height, proof, key, value, now_ns)
        except IbcError as err:
            raise IbcError("ErrInvalidProof", f"{key.decode()}: {err}") from None

    def _sent(self, packet: Packet) -> bytes:
        """The commitment this side stored when it sent `packet` (ErrNoOpMsg if none: never sent, or already done)."""
        stored = self.store.get(commitment_key(packet.source_port, packet.source_channel, packet.sequence))
        if stored is None:
            raise IbcError("ErrNoOpMsg", f"no commitment for packet {packet.sequence}: never sent, or already acknowledged "
                           "or timed out")
        if stored != packet.commitment():
            raise IbcError("ErrInvalidPacket", f"packet {packet.sequence} is not the packet that was sent")
        return stored

    # ---------------------------------------------------------------- the packet's life
    def send(self, port: str, channel: str, data: bytes, timeout_height: int, timeout_timestamp_ns: int, now_ns: int) -> Packet:
        """SendPacket: stores the packet's commitment at the next send sequence; returns the packet."""
        if not data:
            raise IbcError("ErrInvalidPacket", "packet data must not be empty")
        end = self._channel(port, channel)
        connection = self._connection(end, open_only=False)
        clients = self.channels.connections.clients
        status = clients.status(connection.client_id, now_ns)
        if status != ACTIVE:
            raise IbcError("ErrClientNotActive", f"client {connection.client_id} status is {status}")
        latest = clients.module.latest_height(connection.client_id)
        if latest == 0:
            raise IbcError("ErrInvalidHeight", f"client {connection.client_id} has height 0")
        sequence = self._sequence("nextSequenceSend", port, channel, "ErrSequenceSendNotFound")
        packet = Packet(sequence, port, channel, end.counterparty.port_id, end.counterparty.channel_id, data, timeout_height,
                        timeout_timestamp_ns)
        if packet.timed_out(latest, clients.module.timestamp_at_height(connection.client_id, latest)):
            raise IbcError("ErrTimeoutElapsed", f"the counterparty is already past the timeout (height {latest})")
        self.store[commitment_key(port, channel, sequence)] = packet.commitment()
        self.store[sequence_key("nextSequenceSend", port, channel)] = str(sequence + 1).encode()
        if self.log is not None:
            self.log[sent_log_key(port, channel, sequence)] = packet.to_bytes()
        return packet

    def receive(self, packet: Packet, proof: bytes, proof_height: int, self_height: int, self_time_ns: int, now_ns: int) -> None:
        """RecvPacket: proves the counterparty committed the packet, then records its receipt (once: a packet already
        received is ErrNoOpMsg, a replay changes nothing)."""
        end = self._channel(packet.destination_port, packet.destination_channel)
        self._from_counterparty(packet, end, packet.source_port, packet.source_channel)
        connection = self._connection(end)
        if packet.timed_out(self_height, self_time_ns):
            raise IbcError("ErrTimeoutElapsed", f"packet {packet.sequence} timed out before it was received")
        self._prove(connection, proof_height, proof, commitment_key(packet.source_port, packet.source_channel, packet.sequence),
                    packet.commitment(), now_ns)
        port, channel = packet.destination_port, packet.destination_channel
        if end.ordering == ORDERED:
            expected = self._sequence("nextSequenceRecv", port, channel, "ErrSequenceReceiveNotFound")
            if packet.sequence < expected:
                raise IbcError("ErrNoOpMsg", f"packet {packet.sequence} was already received")
            if packet.sequence != expected:
                raise IbcError("ErrPacketSequenceOutOfOrder", f"packet {packet.sequence} arrived; {expected} is next")
            self.store[sequence_key("nextSequenceRecv", port, channel)] = str(expected + 1).encode()
        else:
            if self.store.get(receipt_key(port, channel, packet.sequence)) is not None:
                raise IbcError("ErrNoOpMsg", f"packet {packet.sequence} was already received")
            self.store[receipt_key(port, channel, packet.sequence)] = RECEIPT

    def write_acknowledgement(self, packet: Packet, ack: bytes) -> None:
        """WriteAcknowledgement: stores the commitment of the receiver's acknowledgement (once)."""
        port, channel = packet.destination_port, packet.destination_channel
        self._channel(port, channel)
        if self.store.get(ack_key(port, channel, packet.sequence)) is not None:
            raise IbcError("ErrAcknowledgementExists", f"packet {packet.sequence} is already acknowledged")
        if not ack:
            raise IbcError("ErrInvalidAcknowledgement", "an acknowledgement must not be empty")
        self.store[ack_key(port, channel, packet.sequence)] = ack_commitment(ack)
        if self.log is not None:
            self.log[ack_log_key(port, channel, packet.sequence)] = ack

    def acknowledge(self, packet: Packet, ack: bytes, proof: bytes, proof_height: int, now_ns: int) -> None:
        """AcknowledgePacket: proves the counterparty's acknowledgement, then deletes the packet's commitment."""
        end = self._channel(packet.source_port, packet.source_channel)
        self._from_counterparty(packet, end, packet.destination_port, packet.destination_channel)
        connection = self._connection(end)
        self._sent(packet)
        self._prove(connection, proof_height, proof, ack_key(packet.destination_port, packet.destination_channel, packet.sequence),
                    ack_commitment(ack), now_ns)
        if end.ordering == ORDERED:
            expected = self._sequence("nextSequenceAck", packet.source_port, packet.source_channel, "ErrSequenceAckNotFound")
            if packet.sequence != expected:
                raise IbcError("ErrPacketSequenceOutOfOrder", f"acknowledgement of packet {packet.sequence}; {expected} is next")
            self.store[sequence_key("nextSequenceAck", packet.source_port, packet.source_channel)] = str(expected + 1).encode()
        del self.store[commitment_key(packet.source_port, packet.source_channel, packet.sequence)]

    def timeout(self, packet: Packet, proof: bytes, proof_height: int, next_sequence_recv: int, now_ns: int) -> None:
        """TimeoutPacket: proves the counterparty passed the timeout without receiving the packet; deletes its
        commitment (the application refunds). An ORDERED channel closes: its order is broken."""
        end = self.channels.channel(packet.source_port, packet.source_channel)
        self._from_counterparty(packet, end, packet.destination_port, packet.destination_channel)
        connection = self._connection(end, open_only=False)
        module = self.channels.connections.clients.module
        if not packet.timed_out(proof_height, module.timestamp_at_height(connection.client_id, proof_height)):
            raise IbcError("ErrTimeoutNotReached", f"the counterparty at height {proof_height} is not past packet "
                           f"{packet.sequence}'s timeout")
        self._sent(packet)
        self._not_received(packet, end, connection, proof, proof_height, next_sequence_recv, now_ns, "ErrPacketReceived")
        self._timed_out(packet, end)

    def timeout_on_close(self, packet: Packet, proof: bytes, proof_closed: bytes, proof_height: int, next_sequence_recv: int,
                         now_ns: int) -> None:
        """TimeoutOnClose: the counterparty closed the channel without receiving the packet."""
        end = self.channels.channel(packet.source_port, packet.source_channel)
        self._from_counterparty(packet, end, packet.destination_port, packet.destination_channel)
        connection = self._connection(end, open_only=False)
        self._sent(packet)
        closed = ChannelEnd(CLOSED, end.ordering, ChannelCounterparty(packet.source_port, packet.source_channel),
                            (connection.counterparty.connection_id,), end.version)
        self._prove(connection, proof_height, proof_closed, channel_key(packet.destination_port, packet.destination_channel),
                    closed.to_bytes(), now_ns)
        self._not_received(packet, end, connection, proof, proof_height, next_sequence_recv, now_ns, "ErrInvalidPacket")
        self._timed_out(packet, end)

    def _not_received(self, packet: Packet, end: ChannelEnd, connection: ConnectionEnd, proof: bytes, proof_height: int,
                      next_sequence_recv: int, now_ns: int, received_code: str) -> None:
        port, channel = packet.destination_port, packet.destination_channel
        if end.ordering == ORDERED:
            if packet.sequence < next_sequence_recv:
                raise IbcError(received_code, f"packet {packet.sequence} was received (next is {next_sequence_recv})")
            self._prove(connection, proof_height, proof, sequence_key("nextSequenceRecv", port, channel),
                        str(next_sequence_recv).encode(), now_ns)
        else:
            self._prove(connection, proof_height, proof, receipt_key(port, channel, packet.sequence), None, now_ns)

    def _timed_out(self, packet: Packet, end: ChannelEnd) -> None:
        del self.store[commitment_key(packet.source_port, packet.source_channel, packet.sequence)]
        if end.ordering == ORDERED:
            self.channels._put(packet.source_port, packet.source_channel, replace(end, state=CLOSED))
