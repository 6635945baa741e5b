"""Secure aggregation between 100 nodes over a real nats-server: 10 drop out along the way, the sum is exact."""

import asyncio

import nats
import numpy as np

from plurigrid.lattice.natsd import NatsCluster
from plurigrid.privacy.secagg import Setup
from plurigrid.privacy.secagg_nats import SecAggService, _signed, aggregate_over_nats
from plurigrid.state.identity import Identity
from tests.lattice.test_transport import require_nats_server


def test_100_nodes_over_nats_with_10_dropping_out_give_the_exact_sum():
    require_nats_server()
    ids = [f"node{i:03d}" for i in range(100)]
    rng = np.random.default_rng(9)
    values = {m: rng.integers(-20_000, 80_000, 2) for m in ids}  # net demand and flexibility offered, Wh
    # ten stop answering: two never (their node is down), then two to three after each round
    stop = dict(zip(ids[3::10], [None, None, 0, 0, 0, 1, 1, 1, 2, 2]))
    absent = {m for m, r in stop.items() if r is None}
    aggregator, mallory = Identity.from_seed(b"\x21" * 32), Identity.from_seed(b"\x66" * 32)
    session = "feeder-3/interval-5"

    async def main():
        with NatsCluster(1) as cluster:
            url = cluster.urls[0]
            conns = [await nats.connect(url) for _ in range(11)]  # nodes share ten connections; the aggregator has its own
            services = [await SecAggService.serve(conns[i % 10], "plurigrid", m, aggregator.did,
                                                  lambda s, m=m: values[m] if s.session == session else None,
                                                  stop_after=stop.get(m))
                        for i, m in enumerate(ids) if m not in absent]
            for nc in conns:
                await nc.flush()  # every subscription is known to the server before anyone asks
            setup = Setup.of(session, ids, length=2)
            # anyone else asking, or asking for another session, gets nothing
            forged = await conns[10].request("plurigrid.secagg.node000", _signed(mallory, {"round": "advertise", "session": session,
                                             "setup": {"session": session, "members": ids, "length": 2, "neighbours": 99}}))
            total, report = await aggregate_over_nats(conns[10], "plurigrid", setup, aggregator, timeout_s=2.0)
            declined = await conns[10].request("plurigrid.secagg.node001", _signed(aggregator, {
                "round": "advertise", "session": "x", "setup": {"session": "x", "members": ids, "length": 2, "neighbours": 99}}))
            for service in services:
                await service.close()
            for nc in conns:
                await nc.close()
            return total, report, forged.data, declined.data

    total, report, forged, declined = asyncio.run(main())
    assert forged == b'{"error":"not signed by the aggregator"}'
    assert declined == b'{"error":"node001: declines x"}'
    counted = [m for m in ids if m not in absent and (stop.get(m) is None or stop[m] >= 2)]
    assert report["counted"] == sorted(counted) and len(counted) == 92
    assert total.tolist() == np.sum([values[m] for m in counted], axis=0).tolist()
    assert [len(a) for a in report["answered"]] == [98, 95, 92, 90]
    assert all(b > 0 for b in report["bytes_in"])
