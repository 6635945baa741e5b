"""A lattice as an IBC chain: a replicated log of IBC messages, applied alike by every member node.

Why: a counterparty's light client trusts a header when more than 2/3 of the lattice's members signed
it, so every member must hold the same IBC state and root at every height. The state is therefore
derived from one totally ordered log (a JetStream stream of its own beside the lattice's clearing log):
each entry is an `ibc` operation signed by a member, carrying a batch of messages
(`plurigrid.ibc.messages`) and its author's clock; each entry is one block. Every node applies the
entries in log order to its own Merkle store (`IbcReplica`), so the heights, times and roots agree
everywhere, and an entry by a non-member, a forged signature or a malformed payload is skipped alike.

Messages that move a participant's credits (MsgTransfer, MsgIssue) count only when the entry's author
hosts that participant (the genesis file's assignment): a node speaks for its own participants, as
it does in clearing. Everything else (client updates, handshakes, packets) is permissionless: its
proofs are what make it valid, so any member may carry a relayer's messages.

`IbcService` puts a node's replica on NATS: `{prefix}.submit` (queue group: any member appends a
relayer's batch and answers with its results), `{prefix}.submit.{did}` (this member, for its own
participants), `{prefix}.query` (ibc-go's queries, any member) and `{prefix}.sign` (every member signs
the header of a height it has applied: the relayer gathers more than 2/3 of them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plurigrid.ibc.endpoint import LedgerEnd
from plurigrid.ibc.errors import IbcError
from plurigrid.ibc.messages import b64, issue, packet_json, unb64
from plurigrid.lattice.genesis import Genesis
from plurigrid.lattice.hashgraph import Operation, Rejected, parse
from plurigrid.lattice.transport import NatsTransport, TransportDown
from plurigrid.state.identity import Identity
from plurigrid.state.store import Store

KIND = "ibc"
SETTLED_DENOM = "wh-fed-in"  # the credits a lattice issues: Wh its participants fed in, as its ledger settled them
APPLIED_KEY = b"ibc-log-sequence"  # side space: the last log entry applied (where a restarted node reads on from)
MAX_ENTRY_BYTES = 48 * 1024  # a batch larger than this is split over several entries (an operation holds 64 KiB)


def chain_id_of(genesis: Genesis) -> str:
    """The lattice's IBC chain id unless its nodes name one: fixed by the genesis file, as the log's stream is."""
    return f"plurigrid-{genesis.id[:12]}"


def subjects(genesis: Genesis) -> tuple[str, str]:
    """The IBC log's JetStream stream and the subject prefix of the lattice's IBC service."""
    return genesis.stream + "_IBC", genesis.stream.lower() + "_ibc"


class IbcReplica(LedgerEnd):
    """One member's copy of the lattice's IBC chain, in its own Merkle store under the node's data folder."""

    def __init__(self, chain_id: str, genesis: Genesis, identity: Identity, folder: Path | str) -> None:
        if str(folder) != ":memory:":
            Path(folder).mkdir(parents=True, exist_ok=True)
        store = Store(":memory:" if str(folder) == ":memory:" else Path(folder) / "ibc.sqlite", durable=False)
        self.hosts = genesis.hosts
        self._entry_time_ns = 0
        super().__init__(chain_id, [identity], store, self._block_time, signers=tuple(genesis.hosts))
        self.skipped: list[tuple[int, str]] = []  # (log sequence, why) of entries that made no block
        self.results: dict[str, tuple[int, list[dict]]] = {}  # operation id → (height, results), recent ones

    def _block_time(self, height: int) -> int:
        """An entry's block time is its author's clock, kept strictly increasing (the client refuses time going back)."""
        return max(self._entry_time_ns, self.time_at(height - 1) + 1) if height > 1 else max(self._entry_time_ns, 1)

    @property
    def applied(self) -> int:
        return int(self.store.snapshot(self.height).side_get(APPLIED_KEY) or b"0")

    def apply(self, sequence: int, data: bytes) -> None:
        """Applies log entry `sequence`: one block of its messages, or nothing (recorded in `skipped`)."""
        try:
            op = parse(data)
        except Rejected as err:
            self.skipped.append((sequence, str(err)))
            return
        payload = op.payload
        if op.author not in self.hosts:
            self.skipped.append((sequence, f"{op.author} is not a member"))
            return
        if op.kind != KIND or set(payload) != {"msgs", "time_ns"} or not isinstance(payload["msgs"], list) \
                or type(payload["time_ns"]) is not int:
            self.skipped.append((sequence, "malformed ibc entry"))
            return
        self._entry_time_ns = payload["time_ns"]
        hosted = set(self.hosts[op.author])
        self.view.side[APPLIED_KEY] = str(sequence).encode()
        results = self.submit(payload["msgs"], may_act_for=hosted.__contains__)
        self.results[op.id] = (self.height, results)
        if len(self.results) > 4096:
            del self.results[next(iter(self.results))]

    # ---------------------------------------------------------------- queries, as JSON (what the service answers)
    def query(self, q: dict) -> Any:
        kind, height = q.get("q"), q.get("height")
        if height is not None and not 0 <= int(height) <= self.height:
            raise IbcError("ErrInvalidHeight", f"height {height} is not committed here (latest {self.height})")
        port, channel = q.get("port", "transfer"), q.get("channel", "")
        if kind == "status":
            return {"chain_id": self.chain_id, "height": self.height, "time_ns": self.time_at(self.height),
                    "root": self.store.root(self.height).hex(), "signers": list(self.signers), "applied": self.applied}
        if kind == "consensus_state":
            return self.consensus_state().to_json()
        if kind == "client_status":
            return self.clients.status(str(q["client_id"]), self.time_at(self.height))
        if kind == "time_at":
            return self.time_at(int(q["h"]))
        if kind == "read":
            value = self.read(unb64(q["key"]), height)
            return None if value is None else b64(value)
        if kind == "prove":
            return b64(self.prove(unb64(q["key"]), height))
        if kind == "items":
            return [[b64(k), b64(v)] for k, v in self.items(unb64(q["prefix"]), height)]
        if kind == "packet_commitments":
            return [packet_json(p) for p in self.packet_commitments(port, channel, height)]
        if kind == "unreceived_packets":
            return self.unreceived_packets(port, channel, [int(s) for s in q["sequences"]], height)
        if kind == "packet_acknowledgements":
            acks = self.packet_acknowledgements(port, channel, [int(s) for s in q["sequences"]], height)
            return {str(s): b64(a) for s, a in acks.items()}
        raise IbcError("ErrInvalidRequest", f"unknown query {kind!r}")


def _reply(ok: Any = None, error: IbcError | None = None) -> bytes:
    body = {"error": {"code": error.code, "log": str(error)}} if error is not None else {"ok": ok}
    return json.dumps(body, separators=(",", ":")).encode()


class IbcService:
    """A member node's IBC side on NATS: it follows the IBC log into its replica and answers relayers."""

    def __init__(self, identity: Identity, genesis: Genesis, servers: list[str], folder: Path, chain_id: str | None = None,
                 wait_s: float = 5.0) -> None:
        stream, self.prefix = subjects(genesis)
        self.identity = identity
        self.transport = NatsTransport(servers, stream=stream, prefix=self.prefix)
        self.replica = IbcReplica(chain_id or chain_id_of(genesis), genesis, identity, folder)
        self.wait_s = wait_s
        self._progress = asyncio.Event()
        self._reader: asyncio.Task | None = None
        self._issues: asyncio.Queue[list] = asyncio.Queue()
        self._issuer: asyncio.Task | None = None

    async def start(self) -> None:
        await self.transport.start()
        self._reader = asyncio.create_task(self._follow())
        self._issuer = asyncio.create_task(self._issue())
        nc = self.transport.nc
        assert nc is not None  # start() connected
        await nc.subscribe(f"{self.prefix}.query", queue="query", cb=self._guard(self._query))
        await nc.subscribe(f"{self.prefix}.submit", queue="submit", cb=self._guard(self._submit))
        await nc.subscribe(f"{self.prefix}.submit.{self.identity.did}", cb=self._guard(self._submit))
        await nc.subscribe(f"{self.prefix}.sign", cb=self._guard(self._sign))

    async def _follow(self) -> None:
        async for sequence, data in self.transport.read(after=self.replica.applied):
            self.replica.apply(sequence, data)
            self._progress.set()
            self._progress = asyncio.Event()

    async def _until(self, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.wait_s
        while not done():
            if time.monotonic() > deadline:
                raise IbcError("ErrInvalidHeight", f"this member has not applied the IBC log that far (at height "
                               f"{self.replica.height})")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), deadline - time.monotonic())

    def _guard(self, handler: Callable[[dict], Any]) -> Callable:
        async def on_message(message: Any) -> None:
            try:
                request = json.loads(message.data)
                if not isinstance(request, dict):
                    raise IbcError("ErrInvalidRequest", "expected a JSON object")
                answer = _reply(await handler(request))
            except IbcError as err:
                answer = _reply(error=err)
            except (ValueError, KeyError, TypeError) as err:
                answer = _reply(error=IbcError("ErrInvalidRequest", f"{err.__class__.__name__}: {err}"))
            except TransportDown as err:
                answer = _reply(error=IbcError("ErrInvalidRequest", f"the IBC log cannot be reached ({err})"))
            if message.reply:
                await message.respond(answer)
        return on_message

    async def _query(self, request: dict) -> Any:
        height = request.get("height")
        if height is not None:
            await self._until(lambda: self.replica.height >= int(height))
        return self.replica.query(request)

    async def _submit(self, request: dict) -> dict:
        """Appends the batch (split to fit entries) and answers once this member applied it: heights and results."""
        messages = request.get("msgs")
        if not isinstance(messages, list):
            raise IbcError("ErrInvalidRequest", "expected {\"msgs\": [message, ...]} (an empty list makes an empty block)")
        heights, results = [], []
        for batch in _split(messages):
            op = Operation.create(self.identity, KIND, {"msgs": batch, "time_ns": time.time_ns()}, ())
            await self.transport.append(op.wire)
            op_id = op.id
            await self._until(lambda: op_id in self.replica.results)  # noqa: B023  (awaited before the loop moves on)
            height, done = self.replica.results[op.id]
            heights.append(height)
            results.extend(done)
        return {"heights": heights, "results": results}

    def settled(self, period: str, fed_in_wh: dict[str, int]) -> None:
        """Issues `SETTLED_DENOM` credits for what this member's participants fed in during a cleared period
        (`interval-<k>`, or `hour-<k>`/`day-<k>` named by its first interval, as their data policies allow).

        Each is issued once (its memo names the period), so a period cleared again after a restart, as the
        clearing log is replayed, issues nothing twice; one the IBC log cannot take now is retried."""
        batch = [issue(p, SETTLED_DENOM, wh, period) for p, wh in fed_in_wh.items() if wh > 0]
        if batch:
            self._issues.put_nowait(batch)

    async def _issue(self) -> None:
        while True:
            batch = await self._issues.get()
            while True:
                try:
                    await self._submit({"msgs": batch})
                    break
                except (TransportDown, IbcError):
                    await asyncio.sleep(1.0)

    async def _sign(self, request: dict) -> dict:
        height, trusted = int(request["height"]), int(request["trusted_height"])
        await self._until(lambda: self.replica.height >= height)
        return self.replica.header(trusted, height=height).to_json()

    async def close(self) -> None:
        for task in (self._issuer, self._reader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.transport.close()
        self.replica.store.close()


def _split(messages: list) -> list[list]:
    """The batch cut into runs that each fit one log entry (order kept); none makes one empty block."""
    batches: list[list] = [[]]
    size = 0
    for message in messages:
        length = len(json.dumps(message, separators=(",", ":")))
        if batches[-1] and size + length > MAX_ENTRY_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(message)
        size += length
    return batches
