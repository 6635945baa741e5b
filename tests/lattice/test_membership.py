"""Membership: every node sees the others, detects a cut-off node within the bound, re-admits it, ignores forgeries."""

import asyncio
import json

from plurigrid.lattice.membership import Membership, decode_heartbeat, encode_heartbeat
from plurigrid.lattice.transport import InprocBus, InprocTransport
from plurigrid.state.identity import Identity

PERIOD_S, DEAD_AFTER_S = 0.05, 0.25


async def _until(condition, timeout_s: float = 3.0) -> float:
    """Waits until `condition()` holds; returns how long it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not condition():
        assert loop.time() - start < timeout_s, "condition not reached in time"
        await asyncio.sleep(0.01)
    return loop.time() - start


def test_view_converges_detects_the_dead_and_readmits():
    async def main():
        bus = InprocBus()
        ids = [Identity.from_seed(bytes([40 + n]) * 32) for n in range(3)]
        transports = [InprocTransport(bus) for _ in ids]
        nodes = []
        for n, (identity, transport) in enumerate(zip(ids, transports)):
            await transport.start()
            member = Membership(identity, (f"home-{n}",), transport, PERIOD_S, DEAD_AFTER_S)
            await member.start()
            nodes.append(member)
        everyone = {i.did for i in ids}
        await _until(lambda: all(set(m.alive()) == everyone - {m.identity.did} for m in nodes))
        assert nodes[0].alive()[ids[1].did].hosts == ("home-1",)

        transports[2].partition()
        took = await _until(lambda: ids[2].did in nodes[0].dead() and ids[2].did in nodes[1].dead())
        assert took <= DEAD_AFTER_S + 3 * PERIOD_S + 0.2  # detected within the bound
        transports[2].heal()
        await _until(lambda: ids[2].did in nodes[0].alive() and ids[2].did in nodes[1].alive())
        for m in nodes:
            await m.stop()

    asyncio.run(main())


def test_forged_replayed_and_malformed_heartbeats_are_ignored():
    alice, mallory = Identity.from_seed(b"\x50" * 32), Identity.from_seed(b"\x51" * 32)
    me = Membership(Identity.from_seed(b"\x52" * 32), (), InprocTransport(InprocBus()))
    genuine = encode_heartbeat(alice, ("home-1",), 1.0, 5)
    me.receive(genuine)
    assert me.members[alice.did].counter == 5
    forged = json.loads(encode_heartbeat(mallory, ("home-1", "home-2"), 1.0, 9))
    forged["did"] = alice.did  # mallory speaking for alice
    for bad in (json.dumps(forged).encode(), b"not json", b"{}", b"x" * 10_000):
        me.receive(bad)
    me.receive(encode_heartbeat(alice, ("home-1", "stolen"), 1.0, 4))  # an old counter: a replay
    assert me.rejected == 4
    assert me.members[alice.did].hosts == ("home-1",) and me.members[alice.did].counter == 5
    assert decode_heartbeat(genuine)["did"] == alice.did
