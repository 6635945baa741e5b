"""Secure aggregation over NATS: members answer the aggregator's rounds by request-reply, dropouts are timeouts.

    # on each member's node
    service = await SecAggService.serve(nc, "plurigrid", "home01", value_of=lambda setup: [net_wh, flex_wh])
    # on the aggregator's
    total, report = await aggregate_over_nats(nc, "plurigrid", Setup.of("feeder-7/interval-42", members, length=2))

A member listens on `<prefix>.secagg.<member id>`; each request names the session and the round and
carries what `secagg.Member` needs for it, each reply is that round's message. The aggregator asks
every member still in the aggregation at once and waits `timeout_s`: who does not answer in time has
dropped out of that round. Every payload is `secagg`'s JSON, so what crosses the broker is only
public keys, encrypted shares, masked inputs and shares of the dropped or counted members' secrets.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plurigrid.privacy.secagg import ROUNDS, Aggregator, Member, SecAggError, Setup, wire_bytes

SUBJECT = "secagg"
ROUND_NAMES = ("advertise", "share", "input", "unmask")


def _setup_json(setup: Setup) -> dict:
    return {"session": setup.session, "members": list(setup.members), "length": setup.length, "neighbours": setup.neighbours}


@dataclass
class SecAggService:
    """A member's side on NATS: answers the rounds of every session it is asked into, with the value `value_of` gives."""

    nc: Any  # a connected nats.aio.client.Client
    prefix: str
    member: str
    value_of: Callable[[Setup], Any]
    stop_after: int | None = None  # tests: stop answering after this round (a node that dropped out)
    sessions: dict[str, Member] = field(default_factory=dict)
    _sub: Any = None

    @classmethod
    async def serve(cls, nc: Any, prefix: str, member: str, value_of: Callable[[Setup], Any],
                    stop_after: int | None = None) -> SecAggService:
        service = cls(nc, prefix, member, value_of, stop_after)
        service._sub = await nc.subscribe(f"{prefix}.{SUBJECT}.{member}", cb=service._on_request)
        return service

    async def _on_request(self, msg: Any) -> None:
        try:
            request = json.loads(msg.data)
            reply = self._answer(request)
        except (SecAggError, ValueError, KeyError, TypeError) as err:  # a malformed request is answered, not crashed on
            reply = {"error": str(err)}
        await msg.respond(json.dumps(reply, separators=(",", ":")).encode())
        round_ = ROUND_NAMES.index(request["round"]) if isinstance(request, dict) and request.get("round") in ROUND_NAMES else -1
        if self.stop_after is not None and round_ >= self.stop_after:
            await self.close()

    def _answer(self, request: dict) -> dict:
        round_ = request["round"]
        if round_ == "advertise":
            s = request["setup"]
            setup = Setup.of(s["session"], s["members"], s["length"], s["neighbours"])
            if self.member not in setup.members:
                raise SecAggError(f"{self.member}: not a member of {setup.session}")
            member = Member(setup, self.member, np.asarray(self.value_of(setup), dtype=np.int64))
            self.sessions[setup.session] = member
            return member.advertise()
        member = self.sessions[request["session"]]
        if round_ == "share":
            return member.share_keys(request["keys"])
        if round_ == "input":
            return member.masked_input(request["shares"])
        if round_ == "unmask":
            answer = member.unmask(request["received"])
            del self.sessions[request["session"]]
            return answer
        raise SecAggError(f"unknown round {round_!r}")

    async def close(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None


async def aggregate_over_nats(nc: Any, prefix: str, setup: Setup, timeout_s: float = 2.0) -> tuple[np.ndarray, dict]:
    """The aggregator: runs the four rounds with the members over NATS. Returns the exact sum of the inputs that
    arrived and a report: who answered each round, bytes sent and received, seconds."""
    agg = Aggregator(setup)
    report: dict[str, Any] = {"answered": [], "bytes_out": [0] * ROUNDS, "bytes_in": [0] * ROUNDS}
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    async def ask(r: int, requests: dict[str, dict]) -> dict[str, dict]:
        async def one(member: str, request: dict) -> tuple[str, dict | None]:
            body = json.dumps(request | {"round": ROUND_NAMES[r], "session": setup.session}, separators=(",", ":")).encode()
            report["bytes_out"][r] += len(body)
            try:
                msg = await nc.request(f"{prefix}.{SUBJECT}.{member}", body, timeout=timeout_s)
            except Exception:  # no responders, a timeout, a lost connection: this member dropped out of the round
                return member, None
            report["bytes_in"][r] += len(msg.data)
            reply = json.loads(msg.data)
            return member, None if "error" in reply else reply

        answers = dict(await asyncio.gather(*(one(m, q) for m, q in requests.items())))
        got = {m: a for m, a in answers.items() if a is not None}
        report["answered"].append(sorted(got))
        return got

    adverts = await ask(0, dict.fromkeys(setup.members, {"setup": _setup_json(setup)}))
    advertised = agg.collect_keys(list(adverts.values()))
    shares = await ask(1, {m: {"keys": agg.keys_for(m)} for m in advertised})
    inbox = agg.route_shares(list(shares.values()))
    inputs = await ask(2, {m: {"shares": inbox[m]} for m in inbox})
    received = agg.collect_inputs(list(inputs.values()))
    answers = await ask(3, {m: {"received": agg.received_for(m)} for m in received})
    total = agg.unmask(list(answers.values()))
    report["seconds"] = loop.time() - t0
    report["counted"] = received
    report["message_bytes"] = sum(map(wire_bytes, answers.values()))
    return total, report
