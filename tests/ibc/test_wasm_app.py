"""IBC-capable WASM modules: `plurigrid module new --ibc`'s template bound to a port on two ledgers, its entry
points called in CosmWasm's shapes, its sub-messages executed with reply-on semantics, and a module's
failures turned into refused handshakes or error acknowledgements with nothing it did kept."""

from __future__ import annotations

import json

import pytest

from plurigrid.ibc import messages as msg
from plurigrid.ibc.errors import IbcError
from plurigrid.ibc.packet import commitment_key
from plurigrid.ibc.relayer import Relayer, open_path
from plurigrid.strategies.wasm.authoring import build_module, new_module
from tests.ibc.chains import Chain, Clock
from tests.wasm.test_authoring import require_toolchain

PORT = "wasm.counter"
VERSION = "counter-1"


@pytest.fixture(scope="module")
def counter_wasm(tmp_path_factory) -> bytes:
    require_toolchain("c")
    folder = tmp_path_factory.mktemp("modules") / "counter"
    new_module("counter", "c", folder, ibc=True)
    return build_module(folder).read_bytes()


def _bind(chain: Chain, wasm: bytes, name: str = "counter") -> dict:
    return chain.submit([{"@type": "MsgBindModule", "name": name, "wasm_byte_code": msg.b64(wasm)}])[0]


def _chains(wasm: bytes) -> tuple[Chain, Chain]:
    clock = Clock()
    a, b = Chain("grid-a", 10, clock), Chain("grid-b", 50, clock)
    for chain in (a, b):
        assert _bind(chain, wasm)["code"] == "ok"
    return a, b


def _kv(chain: Chain, key: str) -> int:
    return int(chain.read(f"wasm/counter/kv/{key}".encode()) or b"0")


def test_counter_modules_ping_each_other_through_a_relayer(counter_wasm) -> None:
    a, b = _chains(counter_wasm)
    assert b.submit([msg.issue("wasm.counter", "credit", 10)]) == [{"code": "ok"}]  # only B's module can pay
    side_a, side_b = open_path(a, b, port=PORT, version=VERSION)  # connect: each side sends its first ping
    first = a.packet_commitments(PORT, side_a.channel)
    assert [(p.sequence, p.data) for p in first] == [(1, b"ping")]
    # deliver A's first ping by hand, to see the receive response as the ledger executed it
    height = side_b.end.height
    header = a.header(int(json.loads(b.read(f"clients/{side_b.client}/clientState".encode()))["latest_height"]))
    proof = a.prove(commitment_key(PORT, side_a.channel, 1), a.height)
    result = b.submit([msg.update_client(side_b.client, header), msg.recv_packet(first[0], proof, a.height)])[1]
    assert result["code"] == "ok" and msg.unb64(result["acknowledgement"]) == b'{"received":1}'
    assert {"type": "wasm", "attributes": [{"key": "_contract", "value": "counter"}, {"key": "received", "value": "1"}]} \
        in result["events"]
    assert b.height > height
    Relayer(side_a, side_b).clear()
    for chain in (a, b):  # three pings each way, each received, acknowledged, and answered by the next
        assert (_kv(chain, "sent"), _kv(chain, "received"), _kv(chain, "acked")) == (3, 3, 3)
    # B's module paid the operator 1 credit per ping received; A's had nothing, so each payment was rolled
    # back and reported to `reply` (reply_on = error)
    assert (b.transfer.balance("operator", "credit"), b.transfer.balance("wasm.counter", "credit"), _kv(b, "unpaid")) == (3, 7, 0)
    assert (a.transfer.balance("operator", "credit"), _kv(a, "unpaid")) == (0, 3)
    assert not a.packet_commitments(PORT, side_a.channel) and not b.packet_commitments(PORT, side_b.channel)


def test_a_module_refuses_a_channel_of_another_version(counter_wasm) -> None:
    a, b = _chains(counter_wasm)
    with pytest.raises(IbcError, match="only channels of version counter-1") as err:
        open_path(a, b, port=PORT, version="counter-2")
    assert err.value.code == "ErrInvalidRequest"
    assert a.read(b"channelEnds/ports/wasm.counter/channels/channel-0") is None  # the refused Init left nothing


# A module whose receive fails (error or trap) and whose other entry points accept: written in WAT, so this
# runs without a C toolchain.
REFUSING = """(module
  (memory (export "memory") 1)
  (data (i32.const 0) "{\\"ok\\":null}")
  (data (i32.const 32) "{\\"ok\\":{\\"messages\\":[],\\"attributes\\":[],\\"events\\":[]}}")
  (data (i32.const 128) "{\\"error\\":\\"refused\\"}")
  (func (export "alloc") (param i32) (result i32) (i32.const 4096))
  (func $ok (result i64) (i64.const 11))
  (func $basic (result i64) (i64.or (i64.shl (i64.const 32) (i64.const 32)) (i64.const 50)))
  (func (export "ibc_channel_open") (param i32 i32) (result i64) (call $ok))
  (func (export "ibc_channel_connect") (param i32 i32) (result i64) (call $basic))
  (func (export "ibc_channel_close") (param i32 i32) (result i64) (call $basic))
  (func (export "ibc_packet_receive") (param i32 i32) (result i64) %s)
  (func (export "ibc_packet_ack") (param i32 i32) (result i64) (call $basic))
  (func (export "ibc_packet_timeout") (param i32 i32) (result i64) (call $basic)))"""


@pytest.mark.parametrize("receive, reason", [
    ("(i64.or (i64.shl (i64.const 128) (i64.const 32)) (i64.const 19))", "counter.ibc_packet_receive: refused"),
    ("(unreachable)", "counter.ibc_packet_receive: trap: unreachable"),
])
def test_a_failing_receive_is_an_error_acknowledgement(receive, reason) -> None:
    import wasmtime

    wasm = bytes(wasmtime.wat2wasm(REFUSING % receive))
    clock = Clock()
    a, b = Chain("grid-a", 10, clock), Chain("grid-b", 50, clock)
    for chain in (a, b):
        assert _bind(chain, wasm)["code"] == "ok"
    side_a, side_b = open_path(a, b, port=PORT, version=VERSION)
    a.submit([])
    a.execute(lambda: a.packets.send(PORT, side_a.channel, b"hello", 0, 0, a.now_ns))
    a.commit()
    Relayer(side_a, side_b).clear()
    ack = b.packet_acknowledgements(PORT, side_b.channel, [1])[1]
    assert json.loads(ack) == {"error": reason}
    assert not a.packet_commitments(PORT, side_a.channel)  # the error acknowledgement was relayed back


def test_binding_refuses_what_is_not_an_ibc_module_and_a_bound_port(counter_wasm) -> None:
    from plurigrid.strategies.wasm.authoring import _TEMPLATES

    a = Chain("grid-a", 10)
    strategy = (_TEMPLATES / "wat" / "strategy.wat").read_bytes()
    refused = _bind(a, strategy, "strategy")
    assert refused["code"] == "ErrInvalidRequest" and "not an IBC module (missing ibc_channel_open" in refused["log"]
    assert _bind(a, counter_wasm)["code"] == "ok"
    assert "port wasm.counter is already bound" in _bind(a, counter_wasm)["log"]
    assert _bind(a, b"\0asm junk", "junk")["code"] == "ErrInvalidRequest"
    assert a.submit([{"@type": "MsgBindModule", "name": "Bad Name", "wasm_byte_code": ""}])[0]["code"] == "ErrInvalidRequest"


def test_module_new_ibc_is_refused_for_a_language_without_the_template(tmp_path) -> None:
    from tests.cli.test_cli import plurigrid

    res = plurigrid("module", "new", "counter", "--lang", "wat", "--ibc", "--dir", str(tmp_path / "counter"))
    assert res.returncode == 2 and res.stderr == "plurigrid: error: --ibc: the IBC template is written in c, not 'wat'\n"
    assert not (tmp_path / "counter").exists()
