"""The relayer: moves packets, acknowledgements and timeouts between two ledgers over one channel, keeping
each side's light client of the other up to date.

It keeps no state of its own. Every pass reads what is pending from the two ledgers' committed state (the
packets still committed on a side, the acknowledgements written on the other), so a relayer killed at any
moment and started again loses nothing; and a message it delivers twice is refused by the receipts and
sequences (ErrNoOpMsg), so nothing is received twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from plurigrid.ibc.channel import sequence_key
from plurigrid.ibc.connection import ORDERED
from plurigrid.ibc.endpoint import LedgerEnd
from plurigrid.ibc.errors import IbcError
from plurigrid.ibc.packet import Packet, ack_key, ack_log_key, commitment_key, receipt_key, sent_log_key


class Killed(Exception):
    """Raised by a relayer told to stop after some messages (a crash, for tests of restarts)."""


@dataclass
class Side:
    end: LedgerEnd
    client: str  # this ledger's client of the other
    channel: str
    port: str = "transfer"


@dataclass
class Relayer:
    a: Side
    b: Side
    max_messages: int | None = None  # stop (raise Killed) after this many messages: a crash at a chosen moment
    delivered: dict[str, int] = field(default_factory=lambda: {"recv": 0, "ack": 0, "timeout": 0, "update": 0, "noop": 0})

    def _count(self, kind: str) -> None:
        if self.max_messages is not None and sum(self.delivered.values()) >= self.max_messages:
            raise Killed(f"killed after {self.max_messages} messages")
        self.delivered[kind] += 1

    def update(self, source: Side, target: Side) -> int:
        """Brings `target`'s client of `source` to `source`'s latest height; returns that height."""
        latest = target.end.clients.module.latest_height(target.client)
        if source.end.height > latest:
            self._count("update")
            header = source.end.header(latest)
            target.end.execute(lambda: target.end.clients.update_client(target.client, header, target.end.now_ns))
            target.end.commit()
        return source.end.height

    def relay(self) -> int:
        """One pass in both directions; returns the number of packet messages delivered (0: nothing pending)."""
        before = self.delivered["recv"] + self.delivered["ack"] + self.delivered["timeout"]
        for source, target in ((self.a, self.b), (self.b, self.a)):
            self._packets(source, target)
            self._acks(source, target)
        return self.delivered["recv"] + self.delivered["ack"] + self.delivered["timeout"] - before

    def clear(self, passes: int = 100) -> None:
        """Relays until nothing is pending."""
        for _ in range(passes):
            if not self.relay():
                return
        raise RuntimeError(f"still relaying after {passes} passes")

    def pending(self, source: Side) -> list[Packet]:
        """Packets `source` sent that are still committed there (neither acknowledged nor timed out)."""
        end = source.end
        prefix = commitment_key(source.port, source.channel, 0)[:-1]
        packets = []
        for key, _ in end.store.snapshot(end.height).items(prefix):
            raw = end.read_logged(sent_log_key(source.port, source.channel, int(key.rsplit(b"/", 1)[1])))
            if raw is None:
                raise IbcError("ErrInvalidPacket", f"{key.decode()} is committed but the packet is not in the sent log")
            packets.append(Packet.from_bytes(raw))
        return sorted(packets, key=lambda p: p.sequence)

    def _received(self, target: Side, packet: Packet) -> bool:
        end, ordered = target.end, target.end.channels.channel(target.port, target.channel).ordering == ORDERED
        if ordered:
            return int(end.read(sequence_key("nextSequenceRecv", target.port, target.channel)) or b"1") > packet.sequence
        return end.read(receipt_key(target.port, target.channel, packet.sequence)) is not None

    def _packets(self, source: Side, target: Side) -> None:
        for packet in self.pending(source):
            if self._received(target, packet):
                continue  # its acknowledgement is relayed by _acks
            if packet.timed_out(target.end.height, target.end.time_at(target.end.height)):
                self._timeout(source, target, packet)
            elif not packet.timed_out(target.end.block_height, target.end.block_time_ns):
                self._receive(source, target, packet)

    def _receive(self, source: Side, target: Side, packet: Packet) -> None:
        height = self.update(source, target)
        proof = source.end.prove(commitment_key(source.port, source.channel, packet.sequence), height)
        end = target.end

        def deliver() -> None:
            end.packets.receive(packet, proof, height, end.block_height, end.block_time_ns, end.now_ns)
            end.packets.write_acknowledgement(packet, end.transfer.on_receive(packet))

        self._deliver("recv", end, deliver)

    def _timeout(self, source: Side, target: Side, packet: Packet) -> None:
        height = self.update(target, source)
        dst = target.end
        if dst.channels.channel(target.port, target.channel).ordering == ORDERED:
            key = sequence_key("nextSequenceRecv", target.port, target.channel)
            next_recv = int(dst.read(key, height) or b"1")
        else:
            key, next_recv = receipt_key(target.port, target.channel, packet.sequence), packet.sequence
        proof = dst.prove(key, height)
        end = source.end

        def deliver() -> None:
            end.packets.timeout(packet, proof, height, next_recv, end.now_ns)
            end.transfer.on_timeout(packet)

        self._deliver("timeout", end, deliver)

    def _acks(self, source: Side, target: Side) -> None:
        """Acknowledgements written on `target` for packets `source` still holds committed."""
        for packet in self.pending(source):
            ack = target.end.read_logged(ack_log_key(target.port, target.channel, packet.sequence))
            if ack is not None:
                self._acknowledge(source, target, packet, ack)

    def _acknowledge(self, source: Side, target: Side, packet: Packet, ack: bytes) -> None:
        height = self.update(target, source)
        proof = target.end.prove(ack_key(target.port, target.channel, packet.sequence), height)
        end = source.end

        def deliver() -> None:
            end.packets.acknowledge(packet, ack, proof, height, end.now_ns)
            end.transfer.on_acknowledgement(packet, ack)

        self._deliver("ack", end, deliver)

    def _deliver(self, kind: str, end: LedgerEnd, message: Callable[[], None]) -> None:
        self._count(kind)
        try:
            end.execute(message)
        except IbcError as err:
            if err.code != "ErrNoOpMsg":
                raise
            self.delivered[kind] -= 1
            self.delivered["noop"] += 1
        end.commit()
