"""A nexus node's configuration (NODE.toml) and the capability profile of the host it runs on.

Why: the same stack runs on a Raspberry Pi beside a village battery and on a data centre's energy
management server; the file says which participants of which microworld the node acts for, where
its data lives, how it reaches the lattice (several servers: fallback connectivity), and which
devices it may touch; the detected profile (CPU architecture, cores, memory) decides which
modules and capabilities it can run.

    [node]
    name = "village-kiosk"
    data_dir = "nodes/kiosk"            # identity.key, outbox.sqlite, ledger/, status.json, report.json
    participants = ["kiosk", "home-1"]   # must be this node's participants in the genesis file
    fallback_strategy = "self-consumption"   # local control while offline

    [lattice]
    genesis = "genesis.json"             # the lattice's members and world (lattice/genesis.py)

    [transport]
    kind = "nats"                        # or "inproc" (the embedded default, one process)
    servers = ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]

    [capabilities]
    devices = ["meter", "battery"]       # device access this host grants to strategies

    [privacy.home-1]                     # a hosted participant's data policy on the world's (docs/privacy.md):
    meter = { public = "daily" }         # announced to the lattice as its consent, enforced at this node's boundaries

    [[device]]                           # a real device of one of its participants (docs/devices.md)
    name = "home-meter"
    protocol = "sunspec"                 # SunSpec over Modbus TCP, or "mqtt" (then [mqtt] names the broker)
    host = "192.168.1.40"
    port = 502
    unit_id = 3
    participant = "home-1"
    role = "meter"                       # its cumulative register settles the participant; or "battery"
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from plurigrid.microworld.loader import SpecError, parse_text, validate_model
from plurigrid.microworld.privacy import DataPolicy
from plurigrid.microworld.spec import STRATEGIES, Strict

DEVICES = ("meter", "battery", "ev-charger", "heat-pump", "pv-inverter", "relay")
DEVICE_OF_CAPABILITY = {"read_meter": "meter", "set_setpoint": "battery"}  # module capabilities that reach a host's device


class NodeSection(Strict):
    name: str = Field(min_length=1)
    data_dir: str = Field(min_length=1)
    participants: list[str] = Field(min_length=1)
    fallback_strategy: Literal[STRATEGIES] = "self-consumption"  # type: ignore[valid-type]

    @field_validator("participants")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a participant is listed twice")
        return value


class LatticeSection(Strict):
    genesis: str = Field("genesis.json", min_length=1)


class TransportSection(Strict):
    kind: Literal["nats", "inproc"] = "nats"
    servers: list[str] = Field(default_factory=lambda: ["nats://127.0.0.1:4222"], min_length=1)

    @field_validator("servers")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not v.startswith(("nats://", "tls://"))]
        if bad:
            raise ValueError(f"expected nats:// or tls:// URLs, got {bad[0]!r}")
        return value


class CapabilitiesSection(Strict):
    devices: list[Literal[DEVICES]] = Field(default_factory=list)  # type: ignore[valid-type]


class IbcSection(Strict):
    """The node serves its lattice's IBC chain (docs/ibc.md); it keeps serving after the world's last interval."""

    chain_id: str | None = Field(None, min_length=1, pattern=r"^[A-Za-z0-9._-]+$")


class DeviceSection(Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    protocol: Literal["sunspec", "mqtt"]
    participant: str = Field(min_length=1)
    role: Literal["meter", "battery"]
    host: str = "127.0.0.1"
    port: int = Field(502, ge=1, le=65535)
    unit_id: int = Field(1, ge=0, le=255)
    timeout_s: float = Field(1.0, gt=0)
    stale_after_s: float = Field(60.0, gt=0)  # mqtt: an older reading is a fault


class MqttSection(Strict):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    prefix: str = Field("plurigrid", min_length=1)
    site: str = Field("site", min_length=1)


class VtnSection(Strict):
    """An aggregator node's OpenADR VTN: it calls demand response when the lattice clears dear."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    price_threshold_eur_per_kwh: float = Field(gt=0)
    event_minutes: float = Field(60.0, gt=0)
    level: float = Field(1.0, gt=0, le=3)


class OpenAdrSection(Strict):
    """The node's OpenADR 2.0b VEN (the VTN it polls, the participants who never take part), and its VTN if it is an
    aggregator."""

    vtn_url: str | None = Field(None, pattern=r"^https?://")
    ven_name: str | None = Field(None, min_length=1)
    opt_out: list[str] = Field(default_factory=list)
    vtn: VtnSection | None = None


class GrpcSection(Strict):
    """The node's gRPC API (node/proto/nexus.proto)."""

    host: str = "127.0.0.1"
    port: int = Field(50051, ge=1, le=65535)


class NodeConfig(Strict):
    node: NodeSection
    lattice: LatticeSection = LatticeSection()
    transport: TransportSection = TransportSection()
    capabilities: CapabilitiesSection = CapabilitiesSection()
    ibc: IbcSection | None = None
    device: list[DeviceSection] = Field(default_factory=list)
    mqtt: MqttSection | None = None
    openadr: OpenAdrSection | None = None
    grpc: GrpcSection | None = None
    privacy: dict[str, DataPolicy] = Field(default_factory=dict)  # hosted participant → its policy on the world's

    @model_validator(mode="after")
    def _devices(self) -> NodeConfig:
        names = [d.name for d in self.device]
        if len(set(names)) != len(names):
            raise ValueError("device: two devices have one name")
        for n, d in enumerate(self.device):
            if d.participant not in self.node.participants:
                raise ValueError(f"device[{n}].participant: {d.participant!r} is not one of this node's participants "
                                 f"{self.node.participants}")
            if d.protocol == "mqtt" and self.mqtt is None:
                raise ValueError(f"device[{n}]: an mqtt device needs the [mqtt] section (the broker)")
        if self.openadr is not None and self.openadr.vtn_url is None and self.openadr.vtn is None:
            raise ValueError("openadr: give vtn_url (this node's VEN polls that VTN) or [openadr.vtn] (this node is one)")
        strangers = sorted(set(self.openadr.opt_out) - set(self.node.participants)) if self.openadr else []
        if strangers:
            raise ValueError(f"openadr.opt_out: {strangers} are not this node's participants")
        strangers = sorted(set(self.privacy) - set(self.node.participants))
        if strangers:
            raise ValueError(f"privacy: {strangers} are not this node's participants")
        return self


def load_node_config(path: Path) -> tuple[NodeConfig, Path]:
    """The validated config and its data directory (relative paths here and in [lattice] are relative to the file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SpecError(str(path), "", f"cannot read ({err.strerror})") from None
    config = validate_model(str(path), parse_text(str(path), text), NodeConfig)
    data_dir = Path(config.node.data_dir)
    return config, data_dir if data_dir.is_absolute() else path.parent / data_dir


@dataclass(frozen=True)
class HostProfile:
    """What this host is and may do; strategies and modules are matched against it."""

    arch: str
    cores: int
    memory_mb: int
    devices: tuple[str, ...]

    def to_json(self) -> dict:
        return {"arch": self.arch, "cores": self.cores, "memory_mb": self.memory_mb, "devices": list(self.devices)}

    def refuses(self, capabilities: tuple[str, ...], memory_mb: float) -> str | None:
        """Why this host cannot run a module with these capabilities and memory limit (None: it can)."""
        for capability, device in DEVICE_OF_CAPABILITY.items():
            if capability in capabilities and device not in self.devices:
                return f"its {capability!r} capability needs the {device!r} device, which this host does not grant " \
                       f"(capabilities.devices: {list(self.devices)})"
        if self.memory_mb and memory_mb > self.memory_mb:
            return f"its {memory_mb:g} MB memory limit exceeds this host's {self.memory_mb} MB"
        return None


def detect_host(devices: list[str] | tuple[str, ...] = ()) -> HostProfile:
    """The running host's CPU architecture, cores and memory, plus the configured device access."""
    try:
        memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):
        memory_mb = 0
    return HostProfile(platform.machine() or "unknown", os.cpu_count() or 1, int(memory_mb), tuple(devices))
