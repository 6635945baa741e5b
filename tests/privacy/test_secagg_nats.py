"""Secure aggregation between 100 nodes over a real nats-server: 10 drop out along the way, the sum is exact."""

import asyncio

import nats
import numpy as np

from plurigrid.lattice.natsd import NatsCluster
from plurigrid.privacy.secagg import Setup
from plurigrid.privacy.secagg_nats import SecAggService, aggregate_over_nats
from tests.lattice.test_transport import require_nats_server


def test_100_nodes_over_nats_with_10_dropping_out_give_the_exact_sum():
    require_nats_server()
    ids = [f"node{i:03d}" for i in range(100)]
    rng = np.random.default_rng(9)
    values = {m: rng.integers(-20_000, 80_000, 2) for m in ids}  # net demand and flexibility offered, Wh
    # ten stop answering: two never (their node is down), then two to three after each round
    stop = dict(zip(ids[3::10], [None, None, 0, 0, 0, 1, 1, 1, 2, 2]))
    absent = {m for m, r in stop.items() if r is None}

    async def main():
        with NatsCluster(1) as cluster:
            url = cluster.urls[0]
            conns = [await nats.connect(url) for _ in range(11)]  # nodes share ten connections; the aggregator has its own
            services = [await SecAggService.serve(conns[i % 10], "plurigrid", m, lambda s, m=m: values[m], stop_after=stop.get(m))
                        for i, m in enumerate(ids) if m not in absent]
            total, report = await aggregate_over_nats(conns[10], "plurigrid", Setup.of("feeder-3/interval-5", ids, length=2),
                                                      timeout_s=2.0)
            for service in services:
                await service.close()
            for nc in conns:
                await nc.close()
            return total, report

    total, report = asyncio.run(main())
    counted = [m for m in ids if m not in absent and (stop.get(m) is None or stop[m] >= 2)]
    assert report["counted"] == sorted(counted) and len(counted) == 92
    assert total.tolist() == np.sum([values[m] for m in counted], axis=0).tolist()
    assert [len(a) for a in report["answered"]] == [98, 95, 92, 90]
    assert all(b > 0 for b in report["bytes_in"])
