"""Local `nats-server` processes with JetStream: one server, or a 3-server cluster, on free loopback ports.

Why: demos, tests and chaos experiments need real brokers that can be killed and restarted
(`plurigrid lattice up --nats auto`, the failover tests), started from Debian's `nats-server`
binary with nothing configured by hand.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from plurigrid.errors import PlurigridError

CLUSTER_NAME = "plurigrid"


class NatsError(PlurigridError, RuntimeError):
    """nats-server is missing or did not come up."""


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (held open together while chosen, so none repeats)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


@dataclass
class NatsServer:
    name: str
    port: int
    cluster_port: int | None
    store_dir: Path
    routes: list[int] = field(default_factory=list)
    process: subprocess.Popen | None = None
    host: str = "127.0.0.1"  # the address it listens on (a bridge's, for nodes in network namespaces)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def command(self) -> list[str]:
        binary = shutil.which("nats-server")
        if binary is None:
            raise NatsError("nats-server not found on PATH (Debian/Ubuntu: apt-get install nats-server)")
        cmd = [binary, "-n", self.name, "-a", self.host, "-p", str(self.port), "-js", "-sd", str(self.store_dir)]
        if self.cluster_port is not None:
            cmd += ["--cluster_name", CLUSTER_NAME, "--cluster", f"nats://{self.host}:{self.cluster_port}",
                    "--routes", ",".join(f"nats://{self.host}:{p}" for p in self.routes),
                    "--no_advertise"]  # clients use only the URLs they were given (a partition's relays stay in the way)
        return cmd

    def start(self, timeout_s: float = 10.0) -> None:
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while not _listening(self.port, self.host):
            if self.process.poll() is not None:
                raise NatsError(f"nats-server {self.name} exited with code {self.process.returncode}")
            if time.monotonic() > deadline:
                raise NatsError(f"nats-server {self.name} did not listen on port {self.port} within {timeout_s} s")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: the broker vanishes as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class NatsCluster:
    """`size` JetStream servers (routed into one cluster when size > 1) under a temporary folder."""

    def __init__(self, size: int = 3, host: str = "127.0.0.1") -> None:
        self.size, self.host = size, host
        self._tmp = tempfile.TemporaryDirectory(prefix="plurigrid-nats-")
        self._allocate()

    def _allocate(self) -> None:
        picked = free_ports(2 * self.size if self.size > 1 else 1)
        ports = picked[:self.size]
        cluster_ports = picked[self.size:] if self.size > 1 else [None]
        self.servers = [
            NatsServer(f"n{i + 1}", ports[i], cluster_ports[i], Path(self._tmp.name) / f"n{i + 1}",
                       [p for j, p in enumerate(cluster_ports) if j != i and p is not None], host=self.host)
            for i in range(self.size)
        ]

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    def start(self, attempts: int = 3) -> NatsCluster:
        """Starts every server; if one cannot bind (another process took a port we picked), tries new ports."""
        for attempt in range(attempts):
            try:
                for server in self.servers:
                    server.start()
                return self
            except NatsError:
                for server in self.servers:
                    server.kill()
                if attempt == attempts - 1:
                    raise
                self._allocate()
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.kill()
        self._tmp.cleanup()

    def __enter__(self) -> NatsCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
