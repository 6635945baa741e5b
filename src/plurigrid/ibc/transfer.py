"""Cross-grid transfer of energy credits with ICS-20 semantics, on top of the packet keeper.

A credit leaving the grid it was issued on is escrowed there and minted as a voucher on the other grid,
named by its trace (`{port}/{channel}/{denom}` on the receiving side); a voucher going back is burnt and
the escrow released. A packet that times out, or comes back with an error acknowledgement, is refunded.
So for every denomination, what a channel's escrow holds equals the vouchers outstanding (held, or in
flight back), at every height of both ledgers.

Balances are integers (micro-credits) under `balances/{account}/{denom}` in the ledger's Merkle store; the
packet data is ICS-20's JSON (`denom`, `amount` as a string, `sender`, `receiver`), keys sorted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from plurigrid.ibc.channel import ChannelEnd
from plurigrid.ibc.client import canonical
from plurigrid.ibc.errors import IbcError
from plurigrid.ibc.packet import Packet, PacketKeeper

PORT = "transfer"
VERSION = "ics20-1"
SUCCESS_ACK = canonical({"result": "AQ=="})


def balance_key(account: str, denom: str) -> bytes:
    return f"balances/{account}/{denom}".encode()


def escrow_account(port: str, channel: str) -> str:
    return f"escrow:{port}:{channel}"  # account names hold no "/" (keys are balances/{account}/{denom})


def error_ack(message: str) -> bytes:
    return canonical({"error": message})


def is_success(ack: bytes) -> bool:
    try:
        return json.loads(ack) == {"result": "AQ=="}
    except ValueError:
        return False


@dataclass(frozen=True)
class TransferData:
    denom: str
    amount: int
    sender: str
    receiver: str

    def to_bytes(self) -> bytes:
        return canonical({"denom": self.denom, "amount": str(self.amount), "sender": self.sender, "receiver": self.receiver})

    @classmethod
    def from_bytes(cls, raw: bytes) -> TransferData:
        try:
            data = json.loads(raw)
            amount = int(data["amount"])
            parts = (str(data["denom"]), amount, str(data["sender"]), str(data["receiver"]))
        except (ValueError, KeyError, TypeError):
            raise IbcError("ErrInvalidPacket", "not ICS-20 packet data (denom, amount, sender, receiver)") from None
        if amount <= 0 or not all(parts[i] for i in (0, 2, 3)):
            raise IbcError("ErrInvalidPacket", "amount must be positive; denom, sender and receiver non-empty")
        return cls(*parts)


class Transfer:
    """The `transfer` application of one ledger: its side of every transfer channel."""

    port = PORT

    def __init__(self, packets: PacketKeeper) -> None:
        self.packets = packets
        self.store = packets.store

    # ---------------------------------------------------------------- channel callbacks: ICS-20's one version
    def on_channel_open(self, channel: str, end: ChannelEnd, counterparty_version: str | None) -> None:
        for version in (end.version, counterparty_version or VERSION):
            if version != VERSION:
                raise IbcError("ErrInvalidVersion", f"transfer channels speak {VERSION!r}, not {version!r}")

    def on_channel_connect(self, channel: str, end: ChannelEnd, counterparty_version: str | None) -> None:
        self.on_channel_open(channel, end, counterparty_version)

    def on_channel_close(self, channel: str, end: ChannelEnd, initiated_here: bool) -> None:
        return None  # ibc-go's transfer refuses a user's close of a channel; here closing is the operators' decision

    def balance(self, account: str, denom: str) -> int:
        return int(self.store.get(balance_key(account, denom), b"0"))

    def mint(self, account: str, denom: str, amount: int) -> None:
        """Credits issued on this grid (by its settlement), or vouchers of credits escrowed elsewhere."""
        self._add(account, denom, amount)

    def _add(self, account: str, denom: str, amount: int) -> None:
        new = self.balance(account, denom) + amount
        if new < 0:
            raise IbcError("ErrInvalidPacket", f"{account} holds {new - amount} {denom}, not {-amount}")
        if new:
            self.store[balance_key(account, denom)] = str(new).encode()
        elif balance_key(account, denom) in self.store:
            del self.store[balance_key(account, denom)]

    def move(self, source: str, target: str, denom: str, amount: int) -> None:
        """Moves credits between two accounts of this ledger (ErrInvalidPacket if the source holds too few)."""
        self._add(source, denom, -amount)
        self._add(target, denom, amount)

    @staticmethod
    def _returning(denom: str, port: str, channel: str) -> bool:
        """Whether `denom` is a voucher of the channel end (port, channel) it goes back through."""
        return denom.startswith(f"{port}/{channel}/")

    def send(self, channel: str, sender: str, receiver: str, denom: str, amount: int, timeout_height: int,
             timeout_timestamp_ns: int, now_ns: int) -> Packet:
        """Escrows (or, for a voucher going home, burns) `amount` and sends the packet."""
        if amount <= 0:
            raise IbcError("ErrInvalidPacket", "amount must be positive")
        data = TransferData(denom, amount, sender, receiver)
        if self._returning(denom, PORT, channel):
            self._add(sender, denom, -amount)
        else:
            self.move(sender, escrow_account(PORT, channel), denom, amount)
        return self.packets.send(PORT, channel, data.to_bytes(), timeout_height, timeout_timestamp_ns, now_ns)

    def on_receive(self, packet: Packet) -> bytes:
        """Mints a voucher (or releases escrow for credits coming home); returns the acknowledgement. Nothing
        changes when the acknowledgement is an error."""
        try:
            data = TransferData.from_bytes(packet.data)
        except IbcError as err:
            return error_ack(str(err))
        if self._returning(data.denom, packet.source_port, packet.source_channel):
            native = data.denom[len(f"{packet.source_port}/{packet.source_channel}/"):]
            escrow = escrow_account(packet.destination_port, packet.destination_channel)
            if self.balance(escrow, native) < data.amount:
                return error_ack(f"escrow holds {self.balance(escrow, native)} {native}, not {data.amount}")
            self.move(escrow, data.receiver, native, data.amount)
        else:
            self._add(data.receiver, f"{packet.destination_port}/{packet.destination_channel}/{data.denom}", data.amount)
        return SUCCESS_ACK

    def on_acknowledgement(self, packet: Packet, ack: bytes) -> None:
        """An error acknowledgement refunds the sender; a success needs nothing."""
        if not is_success(ack):
            self._refund(packet)

    def on_timeout(self, packet: Packet) -> None:
        self._refund(packet)

    def _refund(self, packet: Packet) -> None:
        data = TransferData.from_bytes(packet.data)
        if self._returning(data.denom, packet.source_port, packet.source_channel):
            self._add(data.sender, data.denom, data.amount)
        else:
            self.move(escrow_account(packet.source_port, packet.source_channel), data.sender, data.denom, data.amount)
