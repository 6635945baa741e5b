"""Network namespaces joined by veth pairs to a bridge: nodes on one machine that talk over real interfaces.

    with VethNetwork(3) as net:          # needs root (CAP_NET_ADMIN) and iproute2's `ip`
        net.host_ip                      # the bridge's address in this namespace: where NATS listens
        net.namespaces                   # ["pg1a2b-0", ...]: `ip netns exec NAME cmd` runs cmd inside one
        net.rx_bytes()                   # bytes each namespace's veth pair carried towards the bridge

Each namespace has its own loopback, routing table and one interface (`eth0`, an end of a veth
pair whose other end is a port of the bridge), so a node inside reaches the host only through the
kernel's network stack, as a node on another machine would through a switch. Names are derived from
this process's id, and the subnet is the first 10.X.0.0/16 from there that no interface of this host
uses yet, so two sessions on one machine do not collide.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from plurigrid.errors import PlurigridError


class NetnsError(PlurigridError, RuntimeError):
    """The namespaces could not be made (no root, no `ip`, no veth support)."""


def _ip(*args: str) -> None:
    res = subprocess.run(["ip", *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {res.stderr.strip() or f'exit {res.returncode}'}")


def available() -> str | None:
    """None if namespaces can be made here, else why not (one line)."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not on PATH (Debian: apt-get install iproute2)"
    if os.geteuid() != 0:
        return "making network namespaces needs root (CAP_NET_ADMIN)"
    return None


def _free_octet(first: int) -> int:
    """The first X from `first` (wrapping within 100..249) such that no address of this host is in 10.X.0.0/16."""
    listed = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout if shutil.which("ip") else ""
    used = {int(part.split(".")[1]) for part in listed.split() if part.startswith("10.") and part.count(".") == 3}
    for step in range(150):
        octet = 100 + (first - 100 + step) % 150
        if octet not in used:
            return octet
    raise NetnsError("no free 10.X.0.0/16 subnet for the namespaces' bridge")


class VethNetwork:
    """`count` namespaces, each with a veth pair to one bridge on the subnet 10.X.0.0/16 (the bridge is 10.X.0.1)."""

    def __init__(self, count: int, tag: str | None = None) -> None:
        if count < 1:
            raise NetnsError(f"expected at least one namespace, got {count}")
        self.count = count
        self.tag = tag or f"{os.getpid() % 0xFFFF:04x}"
        octet = _free_octet(100 + int(self.tag, 16) % 150)
        self.bridge = f"pgbr{self.tag}"
        self.host_ip = f"10.{octet}.0.1"
        self._prefix = f"10.{octet}"
        self.namespaces = [f"pg{self.tag}-{k}" for k in range(count)]
        self.veths = [f"pgv{self.tag}{k}" for k in range(count)]  # the bridge's end of each pair (15 characters at most)
        self._made: list[tuple[str, str]] = []

    def address(self, k: int) -> str:
        """The address of namespace k's interface."""
        return f"{self._prefix}.{(k + 2) // 256}.{(k + 2) % 256}"

    def up(self) -> VethNetwork:
        why = available()
        if why is not None:
            raise NetnsError(why)
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            self._made.append(("link", self.bridge))
            _ip("addr", "add", f"{self.host_ip}/16", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for k, (ns, veth) in enumerate(zip(self.namespaces, self.veths)):
                _ip("netns", "add", ns)
                self._made.append(("netns", ns))
                _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
                self._made.append(("link", veth))
                _ip("link", "set", veth, "master", self.bridge)
                _ip("link", "set", veth, "up")
                _ip("-n", ns, "addr", "add", f"{self.address(k)}/16", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
                _ip("-n", ns, "link", "set", "lo", "up")
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        """Removes everything `up` made (a namespace's end of its pair goes with the namespace)."""
        for kind, name in reversed(self._made):
            subprocess.run(["ip", kind, "del", name], capture_output=True)
        self._made.clear()

    def rx_bytes(self) -> dict[str, int]:
        """Bytes the bridge's end of each pair received: what each namespace sent over its interface."""
        return {ns: int(Path(f"/sys/class/net/{veth}/statistics/rx_bytes").read_text())
                for ns, veth in zip(self.namespaces, self.veths)}

    def __enter__(self) -> VethNetwork:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()
