"""IBC messages as data, and the router that executes them on a ledger's keepers.

Why: a relayer, a lattice's replicated log and `plurigrid ibc` all move the same messages, so a message is
a JSON object (`{"@type": "MsgRecvPacket", ...}`, ibc-go's message names and field names) and `execute`
is the one place that turns it into keeper calls. Each message runs atomically in the block being built;
its result is `{"code": "ok", ...}` or `{"code": <ibc-go error name>, "log": <one line>}`, never an
exception, so one bad message in a batch leaves the others standing (as each message of a relayer's
transaction is judged on its own here; see docs/ibc.md).

Bytes (proofs, acknowledgements, packet data) are base64, as proto3 JSON writes them.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from plurigrid.ibc.channel import ChannelCounterparty
from plurigrid.ibc.client import ClientState, ConsensusState, Header
from plurigrid.ibc.connection import Counterparty
from plurigrid.ibc.errors import IbcError
from plurigrid.ibc.packet import Packet

if TYPE_CHECKING:
    from plurigrid.ibc.endpoint import LedgerEnd

Message = dict[str, Any]
Authority = Callable[[str], bool]  # may the message's author act for this account?


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise IbcError("ErrInvalidRequest", "expected base64 bytes") from None


def packet_json(packet: Packet) -> dict:
    return {**packet.__dict__, "data": b64(packet.data)}


def packet_from(data: dict) -> Packet:
    return Packet(int(data["sequence"]), str(data["source_port"]), str(data["source_channel"]), str(data["destination_port"]),
                  str(data["destination_channel"]), unb64(data["data"]), int(data.get("timeout_height", 0)),
                  int(data.get("timeout_timestamp_ns", 0)))


# ---------------------------------------------------------------- building messages (what relayers and the CLI send)
def update_client(client_id: str, header: Header) -> Message:
    return {"@type": "MsgUpdateClient", "client_id": client_id, "header": header.to_json()}


def recv_packet(packet: Packet, proof: bytes, proof_height: int) -> Message:
    return {"@type": "MsgRecvPacket", "packet": packet_json(packet), "proof_commitment": b64(proof), "proof_height": proof_height}


def acknowledgement(packet: Packet, ack: bytes, proof: bytes, proof_height: int) -> Message:
    return {"@type": "MsgAcknowledgement", "packet": packet_json(packet), "acknowledgement": b64(ack), "proof_acked": b64(proof),
            "proof_height": proof_height}


def timeout(packet: Packet, proof: bytes, proof_height: int, next_sequence_recv: int) -> Message:
    return {"@type": "MsgTimeout", "packet": packet_json(packet), "proof_unreceived": b64(proof), "proof_height": proof_height,
            "next_sequence_recv": next_sequence_recv}


def transfer(channel: str, sender: str, receiver: str, denom: str, amount: int, timeout_height: int = 0,
             timeout_timestamp_ns: int = 0) -> Message:
    return {"@type": "MsgTransfer", "source_port": "transfer", "source_channel": channel, "token": {"denom": denom,
            "amount": str(amount)}, "sender": sender, "receiver": receiver, "timeout_height": timeout_height,
            "timeout_timestamp_ns": timeout_timestamp_ns}


def issue(account: str, denom: str, amount: int, memo: str = "") -> Message:
    """Credits a member issues to a participant it hosts; a `memo` makes the issue once-only (a repeat is ErrNoOpMsg)."""
    return {"@type": "MsgIssue", "account": account, "denom": denom, "amount": str(amount), **({"memo": memo} if memo else {})}


# ---------------------------------------------------------------- executing them
def _create_client(end: LedgerEnd, m: Message, _: Authority) -> dict:
    cs = m["client_state"]
    state = ClientState(str(cs["chain_id"]), int(cs["trusting_period_ns"]), int(cs["latest_height"]))
    return {"client_id": end.clients.create_client(str(m.get("client_type", "plurigrid")), state,
                                                   ConsensusState.from_json(m["consensus_state"]), end.now_ns)}


def _update_client(end: LedgerEnd, m: Message, _: Authority) -> dict:
    return {"result": end.clients.update_client(str(m["client_id"]), Header.from_json(m["header"]), end.now_ns)}


def _conn_init(end: LedgerEnd, m: Message, _: Authority) -> dict:
    cp = m["counterparty"]
    return {"connection_id": end.connections.open_init(str(m["client_id"]), Counterparty(str(cp["client_id"]), ""),
                                                       m.get("version"), int(m.get("delay_period", 0)), end.now_ns)}


def _conn_try(end: LedgerEnd, m: Message, _: Authority) -> dict:
    cp = m["counterparty"]
    return {"connection_id": end.connections.open_try(
        Counterparty(str(cp["client_id"]), str(cp["connection_id"])), int(m.get("delay_period", 0)), str(m["client_id"]),
        list(m["counterparty_versions"]), unb64(m["proof_init"]), int(m["proof_height"]), end.now_ns)}


def _conn_ack(end: LedgerEnd, m: Message, _: Authority) -> dict:
    end.connections.open_ack(str(m["connection_id"]), str(m["counterparty_connection_id"]), dict(m["version"]),
                             unb64(m["proof_try"]), int(m["proof_height"]), end.now_ns)
    return {}


def _conn_confirm(end: LedgerEnd, m: Message, _: Authority) -> dict:
    end.connections.open_confirm(str(m["connection_id"]), unb64(m["proof_ack"]), int(m["proof_height"]), end.now_ns)
    return {}


# each channel step is the keeper's, then the port's application's callback (which may refuse it: then neither lands)
def _chan_init(end: LedgerEnd, m: Message, _: Authority) -> dict:
    ch, port = m["channel"], str(m["port_id"])
    app = end.application(port)
    channel = end.channels.open_init(port, str(ch["ordering"]), tuple(ch["connection_hops"]), str(ch["counterparty"]["port_id"]),
                                     str(ch["version"]), end.now_ns)
    app.on_channel_open(channel, end.channels.channel(port, channel), None)
    return {"channel_id": channel}


def _chan_try(end: LedgerEnd, m: Message, _: Authority) -> dict:
    ch, port = m["channel"], str(m["port_id"])
    app = end.application(port)
    cp = ChannelCounterparty(str(ch["counterparty"]["port_id"]), str(ch["counterparty"]["channel_id"]))
    channel = end.channels.open_try(port, str(ch["ordering"]), tuple(ch["connection_hops"]), cp, str(m["counterparty_version"]),
                                    str(ch["version"]), unb64(m["proof_init"]), int(m["proof_height"]), end.now_ns)
    app.on_channel_open(channel, end.channels.channel(port, channel), str(m["counterparty_version"]))
    return {"channel_id": channel}


def _chan_ack(end: LedgerEnd, m: Message, _: Authority) -> dict:
    port, channel = str(m["port_id"]), str(m["channel_id"])
    end.channels.open_ack(port, channel, str(m["counterparty_version"]), str(m["counterparty_channel_id"]),
                          unb64(m["proof_try"]), int(m["proof_height"]), end.now_ns)
    end.application(port).on_channel_connect(channel, end.channels.channel(port, channel), str(m["counterparty_version"]))
    return {}


def _chan_confirm(end: LedgerEnd, m: Message, _: Authority) -> dict:
    port, channel = str(m["port_id"]), str(m["channel_id"])
    end.channels.open_confirm(port, channel, unb64(m["proof_ack"]), int(m["proof_height"]), end.now_ns)
    end.application(port).on_channel_connect(channel, end.channels.channel(port, channel), None)
    return {}


def _chan_close_init(end: LedgerEnd, m: Message, _: Authority) -> dict:
    port, channel = str(m["port_id"]), str(m["channel_id"])
    end.channels.close_init(port, channel, end.now_ns)
    end.application(port).on_channel_close(channel, end.channels.channel(port, channel), True)
    return {}


def _chan_close_confirm(end: LedgerEnd, m: Message, _: Authority) -> dict:
    port, channel = str(m["port_id"]), str(m["channel_id"])
    end.channels.close_confirm(port, channel, unb64(m["proof_init"]), int(m["proof_height"]), end.now_ns)
    end.application(port).on_channel_close(channel, end.channels.channel(port, channel), False)
    return {}


def _recv(end: LedgerEnd, m: Message, _: Authority) -> dict:
    packet = packet_from(m["packet"])
    end.packets.receive(packet, unb64(m["proof_commitment"]), int(m["proof_height"]), end.block_height, end.block_time_ns,
                        end.now_ns)
    ack = end.application(packet.destination_port).on_receive(packet)
    end.packets.write_acknowledgement(packet, ack)
    return {"acknowledgement": b64(ack)}


def _ack(end: LedgerEnd, m: Message, _: Authority) -> dict:
    packet, ack = packet_from(m["packet"]), unb64(m["acknowledgement"])
    end.packets.acknowledge(packet, ack, unb64(m["proof_acked"]), int(m["proof_height"]), end.now_ns)
    end.application(packet.source_port).on_acknowledgement(packet, ack)
    return {}


def _timeout(end: LedgerEnd, m: Message, _: Authority) -> dict:
    packet = packet_from(m["packet"])
    end.packets.timeout(packet, unb64(m["proof_unreceived"]), int(m["proof_height"]), int(m["next_sequence_recv"]), end.now_ns)
    end.application(packet.source_port).on_timeout(packet)
    return {}


def _authorized(may_act_for: Authority, account: str) -> None:
    if not may_act_for(account):
        raise IbcError("ErrUnauthorized", f"the message's signer may not act for {account!r}")


def _transfer(end: LedgerEnd, m: Message, may_act_for: Authority) -> dict:
    _authorized(may_act_for, str(m["sender"]))
    token = m["token"]
    packet = end.transfer.send(str(m["source_channel"]), str(m["sender"]), str(m["receiver"]), str(token["denom"]),
                               int(token["amount"]), int(m.get("timeout_height", 0)), int(m.get("timeout_timestamp_ns", 0)),
                               end.now_ns)
    return {"sequence": packet.sequence}


def _issue(end: LedgerEnd, m: Message, may_act_for: Authority) -> dict:
    _authorized(may_act_for, str(m["account"]))
    amount, account, denom = int(m["amount"]), str(m["account"]), str(m["denom"])
    if amount <= 0:
        raise IbcError("ErrInvalidRequest", "amount must be positive")
    if "memo" in m:
        key = f"issued/{account}/{denom}/{m['memo']}".encode()
        if key in end.view:
            raise IbcError("ErrNoOpMsg", f"{account} was already issued {denom} for {m['memo']}")
        end.view[key] = str(amount).encode()
    end.transfer.mint(account, denom, amount)
    return {}


def _bind_module(end: LedgerEnd, m: Message, _: Authority) -> dict:
    """Binds an IBC-capable WASM module to port `wasm.{name}` (its code kept in the store, so every member runs it)."""
    from plurigrid.ibc.wasm_app import PORT_PREFIX, code_key
    from plurigrid.strategies.wasm.host import IBC_EXPORTS, ModuleError, compile_module

    name, code = str(m["name"]), unb64(m["wasm_byte_code"])
    if not MODULE_NAME.fullmatch(name):
        raise IbcError("ErrInvalidRequest", f"module name {name!r}: expected lowercase letters, digits and '-'")
    if code_key(name) in end.view:
        raise IbcError("ErrInvalidRequest", f"port {PORT_PREFIX}{name} is already bound")
    try:
        compiled = compile_module(code, f"{PORT_PREFIX}{name}")
    except ModuleError as err:
        raise IbcError("ErrInvalidRequest", str(err)) from None
    missing = [e for e in IBC_EXPORTS if e not in compiled.exports]
    if missing:
        raise IbcError("ErrInvalidRequest", f"{name}: not an IBC module (missing {', '.join(missing)})")
    end.view[code_key(name)] = code
    end.application(PORT_PREFIX + name)  # instantiates it: a module that cannot start is refused here
    return {"port_id": PORT_PREFIX + name, "code_hash": compiled.sha256}


HANDLERS: dict[str, Callable[[LedgerEnd, Message, Authority], dict]] = {
    "MsgCreateClient": _create_client, "MsgUpdateClient": _update_client,
    "MsgConnectionOpenInit": _conn_init, "MsgConnectionOpenTry": _conn_try, "MsgConnectionOpenAck": _conn_ack,
    "MsgConnectionOpenConfirm": _conn_confirm,
    "MsgChannelOpenInit": _chan_init, "MsgChannelOpenTry": _chan_try, "MsgChannelOpenAck": _chan_ack,
    "MsgChannelOpenConfirm": _chan_confirm, "MsgChannelCloseInit": _chan_close_init,
    "MsgChannelCloseConfirm": _chan_close_confirm,
    "MsgRecvPacket": _recv, "MsgAcknowledgement": _ack, "MsgTimeout": _timeout,
    "MsgTransfer": _transfer, "MsgIssue": _issue, "MsgBindModule": _bind_module,
}
MODULE_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")


def execute(end: LedgerEnd, message: object, may_act_for: Authority) -> dict:
    """Runs one message atomically in `end`'s block being built; its result, success or failure, as data."""
    try:
        if not isinstance(message, dict) or message.get("@type") not in HANDLERS:
            kind = message.get("@type") if isinstance(message, dict) else type(message).__name__
            raise IbcError("ErrInvalidRequest", f"unknown message {kind!r} (known: {', '.join(sorted(HANDLERS))})")
        handler = HANDLERS[message["@type"]]
        with end.view.atomic():
            try:
                result = {"code": "ok", **handler(end, message, may_act_for)}
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                raise IbcError("ErrInvalidRequest", f"{message['@type']}: malformed ({err.__class__.__name__}: {err})") from None
        return result | ({"events": end.events[:]} if end.events else {})
    except IbcError as err:
        return {"code": err.code, "log": str(err)}
    finally:
        end.events.clear()
