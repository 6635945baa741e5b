"""OpenADR 2.0b demand response (openleadr): a VEN on the node, a VTN on an aggregator node.

Why: utilities and aggregators call demand response over OpenADR. A node's VEN receives their events,
opts its participants in or out (a participant the node's config lists under `opt_out`, or one with
nothing to offer, opts out), and an event in force enters the decisions of the intervals it covers
(`Ven.adjust`): an opted-in participant's battery stops charging and discharges, and its flexible
load is deferred. A VTN on an aggregator node issues events (`Vtn.issue`), e.g. when the lattice's
price crosses a threshold. Events use OpenADR's SIMPLE signal: level 0 normal, 1 moderate, 2 high,
3 special; any level above 0 is a call to reduce.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from openleadr import OpenADRClient, OpenADRServer

from plurigrid.devices.base import DeviceError

logging.getLogger("openleadr").setLevel(logging.ERROR)  # it reports each poll; failures reach the node as DeviceErrors


@dataclass(frozen=True)
class Event:
    """A demand-response event in force from `start` for `duration` (UTC), at a SIMPLE level."""

    event_id: str
    start: datetime
    duration: timedelta
    level: float

    def covers(self, when: datetime) -> bool:
        return self.start <= when < self.start + self.duration and self.level > 0


@dataclass
class Ven:
    """The node's VEN: its participants' answers to the VTN's events, and the events in force."""

    vtn_url: str
    ven_name: str
    participants: tuple[str, ...]
    flexible: Callable[[str], bool]  # whether a participant has anything to offer (a battery, deferrable load)
    opt_out: tuple[str, ...] = ()
    poll_s: float = 1.0
    events: list[Event] = field(default_factory=list)
    answers: list[dict] = field(default_factory=list)  # (event, participant, optIn/optOut): what the node answered
    _client: OpenADRClient | None = None

    def opted_in(self) -> tuple[str, ...]:
        return tuple(p for p in self.participants if p not in self.opt_out and self.flexible(p))

    async def start(self) -> None:
        client = OpenADRClient(ven_name=self.ven_name, vtn_url=self.vtn_url, allow_jitter=False)
        client.add_handler("on_event", self._on_event)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # openleadr prints banners; stdout is the node's (--json)
                await asyncio.wait_for(client.run(), 10)
        except (TimeoutError, OSError) as err:
            raise DeviceError("unreachable", f"OpenADR VTN at {self.vtn_url}: {err.__class__.__name__}") from None
        if not client.registration_id:
            await client.stop()
            raise DeviceError("refused", f"OpenADR VTN at {self.vtn_url} did not register VEN {self.ven_name!r}")
        self._client = client

    async def _on_event(self, event: dict) -> str:
        opted = self.opted_in()
        event_id = str(event["event_descriptor"]["event_id"])
        for signal in event.get("event_signals", []):
            for interval in signal.get("intervals", []):
                start = interval["dtstart"]
                self.events.append(Event(event_id, start if start.tzinfo else start.replace(tzinfo=UTC),
                                         interval["duration"], float(interval.get("signal_payload", 0))))
        answer = "optIn" if opted else "optOut"
        self.answers += [{"event": event_id, "participant": p, "answer": "optIn" if p in opted else "optOut"}
                         for p in self.participants]
        return answer

    def in_force(self, when: datetime) -> Event | None:
        return next((e for e in self.events if e.covers(when)), None)

    def adjust(self, when: datetime, rows: dict[str, dict], rated_kw: Callable[[str], float]) -> Event | None:
        """Changes the decisions (`rows`, by participant) of the interval starting `when` if an event is in force:
        opted-in participants discharge their batteries at full power and defer their flexible load."""
        event = self.in_force(when)
        if event is None:
            return None
        for participant in self.opted_in():
            row = rows.get(participant)
            if row is not None:
                row["battery_kw"] = -rated_kw(participant)
                row["shift_kw"] = max(float(row["shift_kw"]), 0.0)
        return event

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.stop()
            self._client = None


class Vtn:
    """An aggregator node's VTN: registers VENs and issues events to them."""

    def __init__(self, host: str, port: int, vtn_id: str = "plurigrid-aggregator", poll_s: float = 1.0) -> None:
        self.host, self.port = host, port
        self.responses: list[dict] = []
        self.vens: dict[str, str] = {}  # ven name → ven id
        self._server = OpenADRServer(vtn_id=vtn_id, http_host=host, http_port=port, requested_poll_freq=timedelta(seconds=poll_s))
        self._server.add_handler("on_create_party_registration", self._register)
        self._server.add_handler("on_register_report", self._no_reports)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/OpenADR2/Simple/2.0b"

    async def _register(self, registration: dict) -> tuple[str, str]:
        name = str(registration["ven_name"])
        ven_id = self.vens.setdefault(name, f"ven-{len(self.vens) + 1}")
        return ven_id, f"reg-{ven_id}"

    async def _no_reports(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def start(self) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            await self._server.run_async()

    def issue(self, ven_name: str, start: datetime, duration: timedelta, level: float = 1.0) -> None:
        """A SIMPLE event for one VEN, from `start` for `duration`."""
        ven_id = self.vens.get(ven_name)
        if ven_id is None:
            raise DeviceError("refused", f"OpenADR: no VEN {ven_name!r} registered (registered: {sorted(self.vens)})")

        def answered(ven_id: str, event_id: str, opt_type: str) -> None:
            self.responses.append({"ven": ven_id, "event": event_id, "answer": opt_type})

        self._server.add_event(ven_id=ven_id, signal_name="simple", signal_type="level",
                               intervals=[{"dtstart": start, "duration": duration, "signal_payload": level}], callback=answered)

    def issue_when_dear(self, index: Any, threshold_eur_per_kwh: float, duration: timedelta,
                        level: float = 1.0) -> Callable[[Any], None]:
        """A listener of a node's cleared intervals (`Nexus.on_cleared`): when an interval clears at or above the
        threshold price, every registered VEN gets an event from the next interval's start (`index`: the world's
        interval start times), once per interval."""
        issued: set[int] = set()

        def on_cleared(cleared: Any) -> None:
            k = cleared.header.interval
            price = cleared.result.clearing.price_eur_per_kwh
            if k + 1 >= len(index) or k in issued or not price >= threshold_eur_per_kwh:  # NaN (no trade) is not dear
                return
            issued.add(k)
            start = index[k + 1].to_pydatetime().astimezone(UTC)
            for ven_name in self.vens:
                self.issue(ven_name, start, duration, level)

        return on_cleared

    async def stop(self) -> None:
        await self._server.stop()
