"""A lattice's IBC chain as a relayer or `plurigrid ibc` sees it: reached over NATS, any member answering.

Why: the relayer's logic (`plurigrid.ibc.relayer`) is the same for a ledger in this process and a lattice
elsewhere; this class gives a lattice the same `Chain` interface. Reads go to any member (a queue
group) and name the height they want, so a member that is behind waits for it; a header is signed by
each member separately, so `header` asks them all and keeps the first agreeing signatures of more than
2/3 of the signer set. The NATS client lives on its own event loop in a background thread, so the
relayer stays plain synchronous code.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import nats
from nats.errors import Error as NatsErrorBase

from plurigrid.errors import PlurigridError
from plurigrid.ibc.client import TRUST_LEVEL, ConsensusState, Header
from plurigrid.ibc.errors import IbcError
from plurigrid.ibc.lattice import subjects
from plurigrid.ibc.messages import b64, packet_from, unb64
from plurigrid.ibc.packet import Packet
from plurigrid.lattice.genesis import Genesis
from plurigrid.lattice.transport import any_reachable

T = TypeVar("T")


class LatticeUnreachable(PlurigridError, ConnectionError):
    """No member of the lattice answered (its NATS servers down, or no node serving IBC)."""


class RemoteChain:
    def __init__(self, servers: list[str], genesis: Genesis, timeout_s: float = 10.0) -> None:
        self.genesis, self.servers, self.timeout_s = genesis, servers, timeout_s
        _, self.prefix = subjects(genesis)
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True, name="ibc-nats").start()
        try:
            if not self._run(any_reachable(servers, timeout_s)):
                raise OSError("connection refused")
            self._nc = self._run(nats.connect(servers=servers, connect_timeout=timeout_s, max_reconnect_attempts=-1,
                                              reconnect_time_wait=0.2, allow_reconnect=True, error_cb=self._quiet))
        except (OSError, TimeoutError, NatsErrorBase) as err:
            self._loop.call_soon_threadsafe(self._loop.stop)
            raise LatticeUnreachable(f"no NATS server reachable at {', '.join(servers)} ({err.__class__.__name__})") from None
        status = self.status()
        self.chain_id: str = status["chain_id"]
        self.signer_set: tuple[str, ...] = tuple(status["signers"])

    @staticmethod
    async def _quiet(err: Exception) -> None:  # reconnects are the client's business, not tracebacks
        return None

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _request(self, subject: str, body: dict) -> Any:
        try:
            reply = self._run(self._nc.request(f"{self.prefix}.{subject}", json.dumps(body).encode(), timeout=self.timeout_s))
        except (TimeoutError, NatsErrorBase) as err:
            raise LatticeUnreachable(f"no member of the lattice answered {subject} ({err.__class__.__name__}); is a node "
                                     f"with [ibc] running on {', '.join(self.servers)}?") from None
        answer = json.loads(reply.data)
        if "error" in answer:
            code, log = answer["error"]["code"], answer["error"]["log"]
            raise IbcError(code, log.split(": ", 1)[1] if log.startswith(code + ": ") else log)
        return answer["ok"]

    def query(self, q: str, height: int | None = None, **args: Any) -> Any:
        return self._request("query", {"q": q, "height": height, **args})

    # ---------------------------------------------------------------- the relayer's Chain interface
    def status(self) -> dict:
        return dict(self.query("status"))

    @property
    def height(self) -> int:
        return int(self.status()["height"])

    def time_at(self, height: int) -> int:
        return int(self.query("time_at", h=height))

    def consensus_state(self) -> ConsensusState:
        return ConsensusState.from_json(self.query("consensus_state"))

    def read(self, key: bytes, height: int | None = None) -> bytes | None:
        value = self.query("read", height, key=b64(key))
        return None if value is None else unb64(value)

    def prove(self, key: bytes, height: int | None = None) -> bytes:
        return unb64(self.query("prove", height, key=b64(key)))

    def items(self, prefix: bytes, height: int | None = None) -> list[tuple[bytes, bytes]]:
        return [(unb64(k), unb64(v)) for k, v in self.query("items", height, prefix=b64(prefix))]

    def packet_commitments(self, port: str, channel: str, height: int | None = None) -> list[Packet]:
        return [packet_from(p) for p in self.query("packet_commitments", height, port=port, channel=channel)]

    def unreceived_packets(self, port: str, channel: str, sequences: list[int], height: int | None = None) -> list[int]:
        return [int(s) for s in self.query("unreceived_packets", height, port=port, channel=channel, sequences=sequences)]

    def packet_acknowledgements(self, port: str, channel: str, sequences: list[int],
                                height: int | None = None) -> dict[int, bytes]:
        acks = self.query("packet_acknowledgements", height, port=port, channel=channel, sequences=sequences)
        return {int(s): unb64(a) for s, a in acks.items()}

    def submit(self, messages: list, member: str | None = None) -> list[dict]:
        """Appends the messages through any member (or `member`, a did, for its own participants); their results."""
        subject = "submit" if member is None else f"submit.{member}"
        return list(self._request(subject, {"msgs": messages})["results"])

    def header(self, trusted_height: int) -> Header:
        """The latest height's header with the signatures of more than 2/3 of the signer set."""
        height = self.height
        return self._run(self._gather(height, trusted_height))

    async def _gather(self, height: int, trusted_height: int) -> Header:
        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(inbox)
        needed = len(self.signer_set) * TRUST_LEVEL
        try:
            await self._nc.publish(f"{self.prefix}.sign", json.dumps({"height": height, "trusted_height": trusted_height})
                                   .encode(), reply=inbox)
            deadline = time.monotonic() + self.timeout_s
            header: Header | None = None
            signatures: dict[str, str] = {}
            while len(signatures) <= needed:
                try:
                    reply = await sub.next_msg(timeout=max(0.01, deadline - time.monotonic()))
                except (TimeoutError, NatsErrorBase):
                    raise LatticeUnreachable(f"only {len(signatures)} of {len(self.signer_set)} members signed height "
                                             f"{height} of {self.chain_id} in {self.timeout_s:g} s") from None
                answer = json.loads(reply.data)
                if "ok" not in answer:
                    continue
                signed = Header.from_json(answer["ok"])
                unsigned = Header.from_json({**answer["ok"], "signatures": []})
                if header is None:
                    header = unsigned
                if unsigned == header:  # members that disagree are left out; the client judges what is signed
                    signatures.update(signed.signatures)
            assert header is not None
            return Header(**{**header.__dict__, "signatures": tuple(sorted(signatures.items()))})
        finally:
            await sub.unsubscribe()

    def close(self) -> None:
        if self._loop.is_running():
            try:
                self._run(self._nc.close())
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
