"""IBC-capable WebAssembly modules: a sandboxed module bound to its own port, called in CosmWasm's shapes.

Why: a grid's own applications over IBC (a shared-battery booking, a flexibility market between two
communities) should not need Plurigrid's code to change, nor trust: a module bound to port
`wasm.{name}` gets every channel and packet callback of that port, as a CosmWasm contract does, runs
under the same sandbox and fuel limits as a strategy module, and acts only through the sub-messages it
returns, which the ledger executes with CosmWasm's reply-on semantics. Its state is its kv store,
kept in the ledger's Merkle store under `wasm/{name}/kv/` (so every member of a lattice holds the same,
and a counterparty can be shown a proof of it); its credits are the account `wasm.{name}`.

Entry points (docs/modules.md, "IBC entry points"), each JSON in and `{"ok": …}` or `{"error": "…"}` out:
`ibc_channel_open` (`open_init` / `open_try`), `ibc_channel_connect` (`open_ack` / `open_confirm`),
`ibc_channel_close` (`close_init` / `close_confirm`), `ibc_packet_receive` (an `IbcReceiveResponse`
with the acknowledgement), `ibc_packet_ack`, `ibc_packet_timeout` (each an `IbcBasicResponse`:
sub-messages, attributes, events), and `reply` for sub-messages that ask for one.

A failing handshake, acknowledgement or timeout callback fails its IBC message (nothing it did is
kept). A failing receive still receives the packet (its receipt is written) but keeps nothing the
module did, and acknowledges with an error, as wasmd does.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from plurigrid.ibc.channel import ChannelEnd
from plurigrid.ibc.errors import IbcError
from plurigrid.ibc.messages import b64, unb64
from plurigrid.ibc.packet import Packet
from plurigrid.ibc.transfer import error_ack
from plurigrid.strategies.wasm.host import CompiledModule, ModuleInstance, encode_json
from plurigrid.untrusted import parse_json

if TYPE_CHECKING:
    from plurigrid.ibc.endpoint import LedgerEnd

PORT_PREFIX = "wasm."
REPLY_ON = ("never", "success", "error", "always")
MAX_DEPTH = 8  # sub-messages whose replies return sub-messages, and so on


def code_key(name: str) -> bytes:
    return f"wasm/{name}/code".encode()


class ModuleFailed(Exception):
    """An entry point returned an error, trapped, or returned what is not a response."""


class KvView(MutableMapping[bytes, bytes]):
    """A module's kv store: the keys under `wasm/{name}/kv/` of the ledger's open transaction."""

    def __init__(self, store: MutableMapping[bytes, bytes], name: str) -> None:
        self.store, self.prefix = store, f"wasm/{name}/kv/".encode()

    def __getitem__(self, key: bytes) -> bytes:
        return self.store[self.prefix + key]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.store[self.prefix + key] = value

    def __delitem__(self, key: bytes) -> None:
        del self.store[self.prefix + key]

    def __iter__(self) -> Iterator[bytes]:
        prefixed = getattr(self.store, "prefixed", None)
        keys = prefixed(self.prefix) if prefixed is not None else (k for k in self.store if k.startswith(self.prefix))
        return (k[len(self.prefix):] for k in keys)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _endpoint(port: str, channel: str) -> dict:
    return {"port_id": port, "channel_id": channel}


def channel_json(port: str, channel: str, end: ChannelEnd) -> dict:
    """An `IbcChannel` as CosmWasm gives it to a contract."""
    return {"endpoint": _endpoint(port, channel), "counterparty_endpoint": _endpoint(end.counterparty.port_id,
            end.counterparty.channel_id), "order": end.ordering, "version": end.version,
            "connection_id": end.connection_hops[0]}


def _timeout_json(height: int, timestamp_ns: int) -> dict:
    return {"block": {"revision": 0, "height": height} if height else None,
            "timestamp": str(timestamp_ns) if timestamp_ns else None}


def packet_json(packet: Packet) -> dict:
    """An `IbcPacket` as CosmWasm gives it to a contract."""
    return {"data": b64(packet.data), "src": _endpoint(packet.source_port, packet.source_channel),
            "dest": _endpoint(packet.destination_port, packet.destination_channel), "sequence": packet.sequence,
            "timeout": _timeout_json(packet.timeout_height, packet.timeout_timestamp_ns)}


def _timeout_of(timeout: Any) -> tuple[int, int]:
    timeout = timeout or {}
    block, timestamp = timeout.get("block"), timeout.get("timestamp")
    return (int(block["height"]) if block else 0), (int(timestamp) if timestamp else 0)


class WasmApplication:
    """The application of port `wasm.{name}` on one ledger: its module, instantiated over the ledger's store."""

    def __init__(self, end: LedgerEnd, name: str, compiled: CompiledModule) -> None:
        self.end, self.name, self.port, self.account = end, name, PORT_PREFIX + name, PORT_PREFIX + name
        self.instance = ModuleInstance(compiled, grants=("kv", "log"), kv=KvView(end.view, name))

    # ---------------------------------------------------------------- calling the module
    def _call(self, export: str, message: dict) -> Any:
        context = self.instance.context
        context.now_ms = self.end.now_ns // 10**6
        result = self.instance.call(export, encode_json(message).encode())
        if context.log_lines:  # what the module logged, as an event of the message
            self.end.events.append({"type": "wasm-log", "attributes": [{"key": self.name, "value": line}
                                                                       for line in context.log_lines]})
            context.log_lines.clear()
        if not result.ok or result.output is None:
            raise ModuleFailed(f"{self.name}.{export}: {result.error or 'no output'}")
        try:
            answer = parse_json(result.output)
        except ValueError:
            raise ModuleFailed(f"{self.name}.{export}: invalid output: not JSON") from None
        if not isinstance(answer, dict) or len(answer) != 1 or not ({"ok", "error"} & set(answer)):
            raise ModuleFailed(f"{self.name}.{export}: invalid output: expected {{\"ok\": …}} or {{\"error\": \"…\"}}")
        if "error" in answer:
            raise ModuleFailed(f"{self.name}.{export}: {answer['error']}")
        return answer["ok"]

    def _respond(self, export: str, message: dict, depth: int = 0) -> dict:
        """Calls an entry point and carries out its response (sub-messages, events); its response."""
        response = self._call(export, message)
        if response is None:
            return {}
        if not isinstance(response, dict):
            raise ModuleFailed(f"{self.name}.{export}: invalid output: the response must be an object")
        self._emit(response)
        for sub in response.get("messages") or []:
            self._sub_message(sub, depth)
        return response

    def _emit(self, response: dict) -> None:
        attributes = response.get("attributes") or []
        if attributes:
            self.end.events.append({"type": "wasm", "attributes": [{"key": "_contract", "value": self.name}, *attributes]})
        for event in response.get("events") or []:
            self.end.events.append({"type": f"wasm-{event.get('type', '')}", "attributes": event.get("attributes") or []})

    def _sub_message(self, sub: Any, depth: int) -> None:
        """One `SubMsg`: executed atomically; a failure either fails the caller or (reply_on error/always) is
        rolled back and reported to `reply`, as CosmWasm does."""
        if not isinstance(sub, dict) or sub.get("reply_on", "never") not in REPLY_ON or "msg" not in sub:
            raise ModuleFailed(f"{self.name}: invalid sub-message {sub!r}")
        if depth >= MAX_DEPTH:
            raise ModuleFailed(f"{self.name}: sub-messages nested deeper than {MAX_DEPTH}")
        reply_on = sub.get("reply_on", "never")
        try:
            with self.end.view.atomic():
                self._cosmos_msg(sub["msg"])
            outcome: dict = {"ok": {"events": [], "msg_responses": [], "data": None}}
        except (IbcError, ModuleFailed, KeyError, TypeError, ValueError) as err:
            if reply_on not in ("error", "always"):
                raise ModuleFailed(f"{self.name}: sub-message {sub.get('id', 0)} failed: {err}") from None
            outcome = {"error": str(err)}
        succeeded = "ok" in outcome
        if reply_on == "always" or (reply_on == "success" and succeeded) or (reply_on == "error" and not succeeded):
            if "reply" not in self.instance.compiled.exports:
                raise ModuleFailed(f"{self.name}: sub-message {sub.get('id', 0)} asks for a reply; the module exports no "
                                   "'reply'")
            self._respond("reply", {"id": int(sub.get("id", 0)), "payload": sub.get("payload", ""), "gas_used": 0,
                                    "result": outcome}, depth + 1)

    def _cosmos_msg(self, msg: dict) -> None:
        """The CosmosMsg variants a module may return: a bank send from its account, a packet on its port, an
        ICS-20 transfer of its credits."""
        transfer = self.end.transfer
        if "bank" in msg:
            send = msg["bank"]["send"]
            for coin in send["amount"]:
                amount = int(coin["amount"])
                if amount <= 0:
                    raise IbcError("ErrInvalidRequest", "bank send: amounts must be positive")
                transfer.move(self.account, str(send["to_address"]), str(coin["denom"]), amount)
        elif "ibc" in msg and "send_packet" in msg["ibc"]:
            send = msg["ibc"]["send_packet"]
            height, timestamp = _timeout_of(send.get("timeout"))
            self.end.packets.send(self.port, str(send["channel_id"]), unb64(send["data"]), height, timestamp, self.end.now_ns)
        elif "ibc" in msg and "transfer" in msg["ibc"]:
            t = msg["ibc"]["transfer"]
            height, timestamp = _timeout_of(t.get("timeout"))
            transfer.send(str(t["channel_id"]), self.account, str(t["to_address"]), str(t["amount"]["denom"]),
                          int(t["amount"]["amount"]), height, timestamp, self.end.now_ns)
        else:
            raise IbcError("ErrInvalidRequest", f"unsupported message {sorted(msg)} (bank.send, ibc.send_packet, ibc.transfer)")

    def _guarded(self, export: str, message: dict) -> dict:
        """An entry point whose failure fails the IBC message that called it."""
        try:
            return self._respond(export, message)
        except ModuleFailed as err:
            raise IbcError("ErrInvalidRequest", str(err)) from None
        finally:
            self.instance.kv_changed()

    # ---------------------------------------------------------------- the application interface (router callbacks)
    def on_channel_open(self, channel: str, end: ChannelEnd, counterparty_version: str | None) -> None:
        info = channel_json(self.port, channel, end)
        step = {"open_init": {"channel": info}} if counterparty_version is None else \
            {"open_try": {"channel": info, "counterparty_version": counterparty_version}}
        self._guarded("ibc_channel_open", step)

    def on_channel_connect(self, channel: str, end: ChannelEnd, counterparty_version: str | None) -> None:
        info = channel_json(self.port, channel, end)
        step = {"open_confirm": {"channel": info}} if counterparty_version is None else \
            {"open_ack": {"channel": info, "counterparty_version": counterparty_version}}
        self._guarded("ibc_channel_connect", step)

    def on_channel_close(self, channel: str, end: ChannelEnd, initiated_here: bool) -> None:
        self._guarded("ibc_channel_close", {("close_init" if initiated_here else "close_confirm"):
                                            {"channel": channel_json(self.port, channel, end)}})

    def on_receive(self, packet: Packet) -> bytes:
        events = len(self.end.events)
        try:
            with self.end.view.atomic():
                response = self._respond("ibc_packet_receive", {"packet": packet_json(packet), "relayer": ""})
                ack = response.get("acknowledgement")
                if not isinstance(ack, str):
                    raise ModuleFailed(f"{self.name}.ibc_packet_receive: no acknowledgement (asynchronous acknowledgements "
                                       "are not supported)")
                return unb64(ack)
        except (ModuleFailed, IbcError) as err:
            del self.end.events[events:]
            return error_ack(str(err))
        finally:
            self.instance.kv_changed()

    def on_acknowledgement(self, packet: Packet, ack: bytes) -> None:
        self._guarded("ibc_packet_ack", {"acknowledgement": {"data": b64(ack)}, "original_packet": packet_json(packet),
                                         "relayer": ""})

    def on_timeout(self, packet: Packet) -> None:
        self._guarded("ibc_packet_timeout", {"packet": packet_json(packet), "relayer": ""})
