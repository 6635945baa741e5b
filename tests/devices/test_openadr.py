"""OpenADR 2.0b between an openleadr VTN and the node's VEN: participants opt in or out, and an event in force
changes only the opted-in participants' decisions of the intervals it covers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from plurigrid.devices.base import DeviceError
from plurigrid.devices.openadr import Ven, Vtn
from plurigrid.lattice.natsd import free_ports


def test_events_reach_the_ven_and_change_opted_in_decisions_only() -> None:
    async def scenario() -> None:
        vtn = Vtn("127.0.0.1", free_ports(1)[0], poll_s=0.2)
        await vtn.start()
        ven = Ven(vtn.url, "street-node", ("home01", "home02", "home03"), flexible=lambda p: p != "home03", opt_out=("home02",))
        try:
            await ven.start()
            start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
            vtn.issue("street-node", start, timedelta(minutes=30), level=1.0)
            for _ in range(100):
                if ven.events and vtn.responses:
                    break
                await asyncio.sleep(0.1)
            assert ven.opted_in() == ("home01",)  # home02 opted out, home03 has nothing to offer
            assert {a["participant"]: a["answer"] for a in ven.answers} == {"home01": "optIn", "home02": "optOut",
                                                                           "home03": "optOut"}
            assert [r["answer"] for r in vtn.responses] == ["optIn"]  # the node takes part (one of its participants does)
            rows = {p: {"battery_kw": 1.5, "shift_kw": 0.0} for p in ("home01", "home02", "home03")}
            assert ven.adjust(start - timedelta(minutes=15), rows, lambda p: 5.0) is None  # not in force yet
            event = ven.adjust(start + timedelta(minutes=15), rows, lambda p: 5.0)
            assert event is not None and event.level == 1.0
            assert {p: r["battery_kw"] for p, r in rows.items()} == {"home01": -5.0, "home02": 1.5, "home03": 1.5}
            assert ven.adjust(start + timedelta(minutes=30), rows, lambda p: 5.0) is None  # over
            with pytest.raises(DeviceError, match="refused: OpenADR: no VEN 'nobody' registered"):
                vtn.issue("nobody", start, timedelta(minutes=15))
        finally:
            await ven.stop()
            await vtn.stop()

    asyncio.run(scenario())


def test_no_vtn_is_unreachable() -> None:
    async def scenario() -> None:
        ven = Ven(f"http://127.0.0.1:{free_ports(1)[0]}/OpenADR2/Simple/2.0b", "lonely", ("home01",), flexible=lambda p: True)
        with pytest.raises(DeviceError) as err:
            await ven.start()
        assert err.value.kind in ("unreachable", "refused")

    asyncio.run(scenario())


def test_a_vtn_calls_demand_response_when_the_lattice_clears_dear() -> None:
    from types import SimpleNamespace

    import pandas as pd

    def cleared(k: int, price: float) -> SimpleNamespace:
        return SimpleNamespace(header=SimpleNamespace(interval=k), result=SimpleNamespace(clearing=SimpleNamespace(
            price_eur_per_kwh=price)))

    async def scenario() -> None:
        vtn = Vtn("127.0.0.1", free_ports(1)[0], poll_s=0.2)
        await vtn.start()
        ven = Ven(vtn.url, "street-node", ("home01",), flexible=lambda p: True)
        try:
            await ven.start()
            index = pd.date_range(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1), periods=8, freq="15min")
            listener = vtn.issue_when_dear(index, 0.35, timedelta(minutes=15), level=2.0)
            for k, price in enumerate([0.20, float("nan"), 0.36, 0.36, 0.10]):
                listener(cleared(k, price))
            listener(cleared(2, 0.50))  # the same interval again (a replayed log): no second event
            for _ in range(100):
                if len(ven.events) == 2:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            assert sorted(e.start for e in ven.events) == [index[3].to_pydatetime(), index[4].to_pydatetime()]
            assert {e.level for e in ven.events} == {2.0}
        finally:
            await ven.stop()
            await vtn.stop()

    asyncio.run(scenario())
