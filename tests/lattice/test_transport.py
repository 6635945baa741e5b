"""Transports: one ordered, de-duplicated log and a broadcast, on real nats-server processes and in-process."""

import asyncio
import os
import shutil

import pytest

from plurigrid.lattice.natsd import NatsCluster
from plurigrid.lattice.transport import InprocBus, InprocTransport, NatsTransport, TransportDown


@pytest.fixture
def nats_server_binary() -> str:
    return require_nats_server()


def require_nats_server() -> str:
    """nats-server on PATH; skip without it, or fail under PLURIGRID_REQUIRE_BROKERS=1 (CI)."""
    binary = shutil.which("nats-server")
    if binary is None:
        if os.environ.get("PLURIGRID_REQUIRE_BROKERS") == "1":
            pytest.fail("PLURIGRID_REQUIRE_BROKERS=1 but nats-server is not installed")
        pytest.skip("nats-server not installed (apt-get install nats-server)")
    return binary


async def _take(transport, after: int, count: int, timeout_s: float = 20.0) -> list[tuple[int, bytes]]:
    out = []

    async def collect():
        async for entry in transport.read(after):
            out.append(entry)
            if len(out) == count:
                return

    await asyncio.wait_for(collect(), timeout_s)
    return out


async def _log_contract(make) -> None:
    writer, reader = await make(), await make()
    heard = []
    await reader.listen(heard.append)
    seqs = [await writer.append(f"op-{i}".encode()) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    assert await writer.append(b"op-2") == 3  # a retried append is stored once
    assert await _take(reader, 0, 5) == [(i + 1, f"op-{i}".encode()) for i in range(5)]
    assert await _take(reader, 3, 2) == [(4, b"op-3"), (5, b"op-4")]
    live = asyncio.ensure_future(_take(reader, 5, 1))
    await asyncio.sleep(0.2)
    await writer.append(b"late")
    assert await live == [(6, b"late")]
    await writer.broadcast(b"heartbeat")
    for _ in range(50):
        if heard:
            break
        await asyncio.sleep(0.05)
    assert heard == [b"heartbeat"]
    await writer.close()
    await reader.close()


def test_inproc_log_and_broadcast():
    async def main():
        bus = InprocBus()

        async def make():
            t = InprocTransport(bus)
            await t.start()
            return t

        await _log_contract(make)

    asyncio.run(main())


def test_inproc_partition_refuses_then_catches_up():
    async def main():
        bus = InprocBus()
        a, b = InprocTransport(bus), InprocTransport(bus)
        await a.start()
        await b.start()
        b.partition()
        with pytest.raises(TransportDown):
            await b.append(b"x")
        await a.append(b"while b was away")
        pending = asyncio.ensure_future(_take(b, 0, 1))
        await asyncio.sleep(0.1)
        assert not pending.done()
        b.heal()
        assert await pending == [(1, b"while b was away")]

    asyncio.run(main())


def test_nats_single_server_log_and_broadcast(nats_server_binary):
    with NatsCluster(1) as cluster:
        async def make():
            t = NatsTransport(cluster.urls)
            await t.start()
            return t

        asyncio.run(_log_contract(make))


def test_nats_cluster_survives_the_death_of_the_connected_server(nats_server_binary):
    """R3 stream on 3 servers: kill the writer's server mid-stream; nothing is lost or doubled."""
    with NatsCluster(3) as cluster:
        async def main():
            writer, reader = NatsTransport(cluster.urls), NatsTransport(list(reversed(cluster.urls)))
            await writer.start()
            await reader.start()
            for i in range(20):
                await writer.append(f"op-{i}".encode())
            victim = next(s for s in cluster.servers if s.url == writer.connected_url)
            victim.kill()
            for i in range(20, 40):
                for _ in range(100):  # the client reconnects to another server; retries are de-duplicated
                    try:
                        await writer.append(f"op-{i}".encode())
                        break
                    except TransportDown:
                        await asyncio.sleep(0.1)
            entries = await _take(reader, 0, 40, timeout_s=60)
            assert [data for _, data in entries] == [f"op-{i}".encode() for i in range(40)]
            assert [seq for seq, _ in entries] == list(range(1, 41))
            assert writer.connected_url != victim.url
            await writer.close()
            await reader.close()

        asyncio.run(main())
