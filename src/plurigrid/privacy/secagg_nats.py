"""Secure aggregation over NATS: members answer the aggregator's rounds by request-reply, dropouts are timeouts.

    # on each member's node: answers only the aggregator's signed requests, for the sessions it accepts
    service = await SecAggService.serve(nc, "plurigrid", "home01", aggregator.did,
                                        value_of=lambda setup: [net_wh, flex_wh] if setup.session == expected else None)
    # on the aggregator's (its Ed25519 identity signs every request)
    total, report = await aggregate_over_nats(nc, "plurigrid", Setup.of("feeder-7/interval-42", members, length=2), aggregator)

A member listens on `<prefix>.secagg.<member id>`; each request names the session and the round,
carries what `secagg.Member` needs for it and the aggregator's signature; each reply is that round's
message. The aggregator asks every member still in the aggregation at once and waits `timeout_s`:
who does not answer in time has dropped out of that round. Every payload is `secagg`'s JSON, so what
crosses the broker is only public keys, encrypted shares, masked inputs and shares of the dropped or
counted members' secrets.

A member answers only requests signed by the aggregator it was given, each round of a session once
and in order, and joins only the sessions `value_of` accepts (None declines). It must not join two
aggregations of one value over different member sets: their difference would give that value away
(join each interval's feeder total once, say). Sessions not finished within `ttl_s` are forgotten,
their keys and seeds with them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plurigrid.privacy.secagg import ROUNDS, Aggregator, Member, SecAggError, Setup, wire_bytes
from plurigrid.state.identity import Identity, verify
from plurigrid.state.ledger import canonical

SUBJECT = "secagg"
ROUND_NAMES = ("advertise", "share", "input", "unmask")


def _setup_json(setup: Setup) -> dict:
    return {"session": setup.session, "members": list(setup.members), "length": setup.length, "neighbours": setup.neighbours}


def _signed(identity: Identity, request: dict) -> bytes:
    body = canonical(request).decode()
    return json.dumps({"request": body, "signature": base64.b64encode(identity.sign(body.encode())).decode()},
                      separators=(",", ":")).encode()


@dataclass
class SecAggService:
    """A member's side on NATS: answers the rounds of the sessions it accepts, with the value `value_of` gives."""

    nc: Any  # a connected nats.aio.client.Client
    prefix: str
    member: str
    aggregator: str  # the did:key whose signed requests it answers
    value_of: Callable[[Setup], Any]  # the numbers to sum in a session, or None to decline it
    stop_after: int | None = None  # tests: stop answering after this round (a node that dropped out)
    ttl_s: float = 60.0
    sessions: dict[str, tuple[Member, float]] = field(default_factory=dict)
    _sub: Any = None

    @classmethod
    async def serve(cls, nc: Any, prefix: str, member: str, aggregator: str, value_of: Callable[[Setup], Any],
                    stop_after: int | None = None, ttl_s: float = 60.0) -> SecAggService:
        service = cls(nc, prefix, member, aggregator, value_of, stop_after, ttl_s)
        service._sub = await nc.subscribe(f"{prefix}.{SUBJECT}.{member}", cb=service._on_request)
        return service

    async def _on_request(self, msg: Any) -> None:
        round_ = -1
        try:
            envelope = json.loads(msg.data)
            body = envelope["request"]
            if not verify(self.aggregator, base64.b64decode(envelope["signature"], validate=True), body.encode()):
                raise SecAggError("not signed by the aggregator")
            request = json.loads(body)
            round_ = ROUND_NAMES.index(request["round"])
            reply = self._answer(request, round_)
        except (SecAggError, ValueError, KeyError, TypeError, AttributeError) as err:  # answered, never crashed on
            reply = {"error": str(err)}
        await msg.respond(json.dumps(reply, separators=(",", ":")).encode())
        if self.stop_after is not None and round_ >= self.stop_after:
            await self.close()

    def _answer(self, request: dict, round_: int) -> dict:
        now = time.monotonic()
        self.sessions = {k: v for k, v in self.sessions.items() if now - v[1] < self.ttl_s}
        if round_ == 0:
            s = request["setup"]
            setup = Setup.of(s["session"], s["members"], s["length"], s["neighbours"])
            if self.member not in setup.members or setup.session in self.sessions:
                raise SecAggError(f"{self.member}: not joining {setup.session}")
            value = self.value_of(setup)
            if value is None:
                raise SecAggError(f"{self.member}: declines {setup.session}")
            member = Member(setup, self.member, np.asarray(value, dtype=np.int64))
            self.sessions[setup.session] = (member, now)
            return member.advertise()
        member = self.sessions[request["session"]][0]
        if round_ == 1:
            return member.share_keys(request["keys"])
        if round_ == 2:
            return member.masked_input(request["shares"])
        answer = member.unmask(request["received"])
        del self.sessions[request["session"]]
        return answer

    async def close(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None


async def aggregate_over_nats(nc: Any, prefix: str, setup: Setup, identity: Identity,
                              timeout_s: float = 2.0) -> tuple[np.ndarray, dict]:
    """The aggregator (`identity` signs its requests): runs the four rounds with the members over NATS. Returns the
    exact sum of the inputs that arrived and a report: who answered each round, bytes sent and received, seconds."""
    agg = Aggregator(setup)
    report: dict[str, Any] = {"answered": [], "bytes_out": [0] * ROUNDS, "bytes_in": [0] * ROUNDS}
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    async def ask(r: int, requests: dict[str, dict]) -> dict[str, dict]:
        async def one(member: str, request: dict) -> tuple[str, dict | None]:
            body = _signed(identity, request | {"round": ROUND_NAMES[r], "session": setup.session})
            report["bytes_out"][r] += len(body)
            try:
                msg = await nc.request(f"{prefix}.{SUBJECT}.{member}", body, timeout=timeout_s)
                reply = json.loads(msg.data)
            except Exception:  # no responders, a timeout, a lost connection, a garbled reply: dropped out of the round
                return member, None
            report["bytes_in"][r] += len(msg.data)
            return member, reply if isinstance(reply, dict) and "error" not in reply else None

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
