"""How nexus nodes reach each other: one replicated, totally ordered log, plus best-effort broadcast.

Why: replicated clearing needs every node to read the same operations in the same order (so the
first "close interval k" record fixes the same cut everywhere), and membership needs cheap
heartbeats. Two transports give exactly these semantics:

- `NatsTransport`: the log is a JetStream stream (replicated across a NATS cluster, R3 when there
  are 3 servers, so it survives a broker's death); appends carry their content hash as
  `Nats-Msg-Id`, so a retried publish after a failover is stored once; readers use ordered
  consumers from a sequence number; broadcast is core NATS publish/subscribe. The client holds
  every server's URL and reconnects to another when one dies (fallback connectivity).
- `InprocTransport`: the embedded default, the same semantics inside one process (`InprocBus`);
  `partition()` / `heal()` cut one node off, for tests and chaos runs.
"""

from __future__ import annotations

import asyncio
import hashlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable

import nats
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsErrorBase
from nats.errors import NoServersError
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, StreamConfig

from plurigrid.errors import PlurigridError

LOG_SUBJECT, BROADCAST_SUBJECT = "log", "broadcast"
Handler = Callable[[bytes], Awaitable[None] | None]


class TransportDown(PlurigridError, ConnectionError):
    """The lattice cannot be reached right now (the node goes offline and keeps working locally)."""


class Transport(ABC):
    connected: bool  # whether the lattice can be reached now (False: the node runs on local control)

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def append(self, data: bytes) -> int:
        """Adds `data` to the ordered log; returns its sequence number (1, 2, …). Raises TransportDown."""

    @abstractmethod
    async def head(self) -> int:
        """The sequence number of the log's last entry (0 when empty). Raises TransportDown."""

    @abstractmethod
    def read(self, after: int = 0) -> AsyncIterator[tuple[int, bytes]]:
        """Every log entry after sequence `after`, in order, then new ones as they are appended."""

    @abstractmethod
    async def broadcast(self, data: bytes) -> None:
        """Best-effort delivery to every node listening now (heartbeats). Raises TransportDown."""

    @abstractmethod
    async def listen(self, handler: Handler) -> None:
        """Calls `handler(data)` for every broadcast from now on."""

    @abstractmethod
    async def close(self) -> None: ...


async def _call(handler: Handler, data: bytes) -> None:
    result = handler(data)
    if asyncio.iscoroutine(result):
        await result


async def any_reachable(servers: list[str], timeout_s: float) -> bool:
    """Whether one of the NATS servers accepts a TCP connection (the NATS client would retry an unreachable list forever)."""
    from urllib.parse import urlparse

    for server in servers:
        url = urlparse(server)
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(url.hostname, url.port or 4222), timeout_s)
        except (TimeoutError, OSError):
            continue
        writer.close()
        return True
    return False


class InprocBus:
    """One process's log and broadcast fan-out, shared by its InprocTransports."""

    def __init__(self) -> None:
        self.entries: list[bytes] = []
        self.seq_of: dict[str, int] = {}
        self.listeners: list[InprocTransport] = []
        self.changed = asyncio.Event()

    def _notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class InprocTransport(Transport):
    def __init__(self, bus: InprocBus) -> None:
        self.bus = bus
        self.connected = True
        self._handlers: list[Handler] = []

    async def start(self) -> None:
        self.bus.listeners.append(self)

    def partition(self) -> None:
        self.connected = False

    def heal(self) -> None:
        self.connected = True
        self.bus._notify()

    def _check(self) -> None:
        if not self.connected:
            raise TransportDown("partitioned from the in-process lattice")

    async def append(self, data: bytes) -> int:
        self._check()
        msg_id = hashlib.sha256(data).hexdigest()
        if msg_id not in self.bus.seq_of:  # the same de-duplication JetStream applies by Nats-Msg-Id
            self.bus.entries.append(data)
            self.bus.seq_of[msg_id] = len(self.bus.entries)
            self.bus._notify()
        return self.bus.seq_of[msg_id]

    async def head(self) -> int:
        self._check()
        return len(self.bus.entries)

    async def read(self, after: int = 0) -> AsyncIterator[tuple[int, bytes]]:
        seq = after
        while True:
            waiter = self.bus.changed
            while self.connected and seq < len(self.bus.entries):
                seq += 1
                yield seq, self.bus.entries[seq - 1]
            await waiter.wait()

    async def broadcast(self, data: bytes) -> None:
        self._check()
        for peer in list(self.bus.listeners):
            if peer.connected:
                for handler in peer._handlers:
                    await _call(handler, data)

    async def listen(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def close(self) -> None:
        if self in self.bus.listeners:
            self.bus.listeners.remove(self)


class NatsTransport(Transport):
    """A JetStream stream as the log; `servers` are tried in turn and on every reconnect."""

    def __init__(self, servers: list[str], stream: str = "PLURIGRID", prefix: str = "plurigrid",
                 replicas: int | None = None, timeout_s: float = 2.0) -> None:
        self.servers, self.stream, self.prefix = servers, stream, prefix
        self.replicas = replicas if replicas is not None else min(3, len(servers))
        self.timeout_s = timeout_s
        self.nc: NatsClient | None = None  # both set by start(), which the node calls before anything else
        self.js: JetStreamContext | None = None
        self.last_error: Exception | None = None
        self._subs: list = []

    async def start(self) -> None:

        if not await self._any_reachable():  # the client itself would retry an unreachable list forever
            raise TransportDown(f"no NATS server reachable at {', '.join(self.servers)}")

        async def quiet(err: Exception) -> None:  # connection trouble is reported as TransportDown, not tracebacks
            self.last_error = err

        try:
            self.nc = await nats.connect(servers=self.servers, connect_timeout=self.timeout_s, reconnect_time_wait=0.2,
                                         max_reconnect_attempts=-1, allow_reconnect=True, error_cb=quiet)
        except (TimeoutError, NoServersError, OSError) as err:
            raise TransportDown(f"no NATS server reachable at {', '.join(self.servers)} ({err})") from None
        self.js = self.nc.jetstream(timeout=self.timeout_s)
        await self._ensure_stream()

    async def _any_reachable(self) -> bool:
        return await any_reachable(self.servers, self.timeout_s)

    async def _until_ready(self, request: Callable[[], Awaitable], what: str, wait_s: float = 30.0):
        """Retries a JetStream API request while the cluster (re-)elects its leaders after a start or a failure."""

        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            try:
                return await request()
            except (TimeoutError, NatsErrorBase) as err:
                if asyncio.get_running_loop().time() > deadline:
                    raise TransportDown(f"{what} failed ({err.__class__.__name__}: {err})") from None
                await asyncio.sleep(0.25)

    async def _ensure_stream(self) -> None:

        config = StreamConfig(name=self.stream, subjects=[f"{self.prefix}.{LOG_SUBJECT}"], num_replicas=self.replicas,
                              duplicate_window=120.0)
        js = self.js
        assert js is not None  # start() connected first
        await self._until_ready(lambda: js.add_stream(config), f"creating JetStream stream {self.stream}")

    async def append(self, data: bytes) -> int:

        headers = {"Nats-Msg-Id": hashlib.sha256(data).hexdigest()}
        assert self.js is not None  # start() connected first
        try:
            ack = await self.js.publish(f"{self.prefix}.{LOG_SUBJECT}", data, headers=headers, timeout=self.timeout_s)
        except (TimeoutError, NatsErrorBase) as err:
            raise TransportDown(f"append failed ({err.__class__.__name__})") from None
        return ack.seq

    async def head(self) -> int:
        js = self.js
        assert js is not None  # start() connected first
        info = await self._until_ready(lambda: js.stream_info(self.stream), "reading the log's head", wait_s=5.0)
        return info.state.last_seq

    async def read(self, after: int = 0) -> AsyncIterator[tuple[int, bytes]]:

        start = {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": after + 1} if after else \
            {"deliver_policy": DeliverPolicy.ALL}
        js = self.js
        assert js is not None  # start() connected first
        sub = await self._until_ready(lambda: js.subscribe(
            f"{self.prefix}.{LOG_SUBJECT}", ordered_consumer=True, idle_heartbeat=1.0, config=ConsumerConfig(**start)),
            "subscribing to the log")
        self._subs.append(sub)
        seq = after
        async for msg in sub.messages:
            stream_seq = msg.metadata.sequence.stream
            if stream_seq <= seq:  # a consumer reset after failover may repeat what was delivered
                continue
            seq = stream_seq
            yield seq, msg.data

    async def broadcast(self, data: bytes) -> None:
        assert self.nc is not None  # start() connected first
        try:
            await self.nc.publish(f"{self.prefix}.{BROADCAST_SUBJECT}", data)
        except NatsErrorBase as err:
            raise TransportDown(f"broadcast failed ({err.__class__.__name__})") from None

    async def listen(self, handler: Handler) -> None:
        async def on_message(msg) -> None:
            await _call(handler, msg.data)

        assert self.nc is not None  # start() connected first
        self._subs.append(await self.nc.subscribe(f"{self.prefix}.{BROADCAST_SUBJECT}", cb=on_message))

    @property
    def connected(self) -> bool:  # type: ignore[override]  # read-only here: the NATS client knows, nothing sets it
        return self.nc is not None and self.nc.is_connected

    @property
    def connected_url(self) -> str | None:
        url = self.nc.connected_url if self.nc is not None else None
        return None if url is None else f"nats://{url.hostname}:{url.port}"

    async def close(self) -> None:
        if self.nc is not None:
            await self.nc.close()
