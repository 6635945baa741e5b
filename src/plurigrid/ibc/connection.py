"""ICS-03 connections: the four-step handshake between two clients, each step proven to the other side.

As in ibc-go v11, each step after Init verifies only the counterparty's connection end (its state,
client ids, versions and delay) under the ICS-24 path `connections/{id}`, through this side's light
client of the counterparty; nothing else about the counterparty's client is checked.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from dataclasses import dataclass, field, replace

from plurigrid.ibc.client import ACTIVE, canonical
from plurigrid.ibc.errors import IbcError
from plurigrid.ibc.keeper import ClientKeeper

INIT, TRYOPEN, OPEN = "STATE_INIT", "STATE_TRYOPEN", "STATE_OPEN"
ORDERED, UNORDERED = "ORDER_ORDERED", "ORDER_UNORDERED"
DEFAULT_VERSION = {"identifier": "1", "features": [ORDERED, UNORDERED]}
PREFIX = "ibc"  # the counterparty's key prefix (merkle prefix) as ICS-03 carries it
NEXT_CONNECTION_SEQUENCE = b"nextConnectionSequence"


def connection_key(connection_id: str) -> bytes:
    return f"connections/{connection_id}".encode()


@dataclass(frozen=True)
class Counterparty:
    """The other end: its client (of this ledger) and, once known, its connection id."""

    client_id: str
    connection_id: str = ""
    prefix: str = PREFIX


@dataclass(frozen=True)
class ConnectionEnd:
    """One side's record of a connection, stored under `connections/{id}` (what the other side is shown)."""

    state: str
    client_id: str
    counterparty: Counterparty
    versions: tuple[dict, ...]
    delay_period_ns: int = 0

    def to_bytes(self) -> bytes:
        return canonical({"state": self.state, "client_id": self.client_id, "counterparty": self.counterparty.__dict__,
                          "versions": list(self.versions), "delay_period_ns": self.delay_period_ns})

    @classmethod
    def from_bytes(cls, raw: bytes) -> ConnectionEnd:
        data = json.loads(raw)
        return cls(data["state"], data["client_id"], Counterparty(**data["counterparty"]), tuple(data["versions"]),
                   data["delay_period_ns"])


def _supported(version: dict) -> bool:
    """A version this implementation speaks: identifier "1" with features it knows (and at least one)."""
    return (isinstance(version, dict) and version.get("identifier") == DEFAULT_VERSION["identifier"]
            and isinstance(version.get("features"), list) and bool(version["features"])
            and set(version["features"]) <= set(DEFAULT_VERSION["features"]))


def negotiate(counterparty_versions: list[dict]) -> dict:
    """The version both sides support, picked as ICS-03 does (ours, in our order, with the common features)."""
    if not counterparty_versions:
        raise IbcError("ErrVersionNegotiationFailed", "the counterparty offers no versions")
    for theirs in counterparty_versions:
        if isinstance(theirs, dict) and theirs.get("identifier") == DEFAULT_VERSION["identifier"]:
            common = [f for f in DEFAULT_VERSION["features"] if f in (theirs.get("features") or [])]
            if common:
                return {"identifier": DEFAULT_VERSION["identifier"], "features": common}
    raise IbcError("ErrVersionNegotiationFailed", "no version of the counterparty's matches ours")


@dataclass
class ConnectionKeeper:
    clients: ClientKeeper
    store: MutableMapping[bytes, bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.store = self.clients.store

    def connection(self, connection_id: str) -> ConnectionEnd:
        raw = self.store.get(connection_key(connection_id))
        if raw is None:
            raise IbcError("ErrConnectionNotFound", f"connection {connection_id} not found")
        return ConnectionEnd.from_bytes(raw)

    def _put(self, connection_id: str, end: ConnectionEnd) -> None:
        self.store[connection_key(connection_id)] = end.to_bytes()

    def _active(self, client_id: str, now_ns: int) -> None:
        status = self.clients.status(client_id, now_ns)
        if status != ACTIVE:
            raise IbcError("ErrClientNotActive", f"client {client_id} status is {status}")

    def _verify_counterparty(self, end: ConnectionEnd, counterparty_connection_id: str, expected: ConnectionEnd,
                             proof: bytes, proof_height: int, now_ns: int) -> None:
        try:
            self.clients.module.verify_membership(end.client_id, proof_height, proof, connection_key(counterparty_connection_id),
                                                  expected.to_bytes(), now_ns)
        except IbcError as err:
            raise IbcError("ErrInvalidProof", f"connection state verification failed: {err}") from None

    def open_init(self, client_id: str, counterparty: Counterparty, version: dict | None, delay_period_ns: int,
                  now_ns: int) -> str:
        """ConnOpenInit: a new connection end in INIT on this side."""
        if version is not None and not _supported(version):
            raise IbcError("ErrInvalidVersion", f"version {version} is not supported")
        self._active(client_id, now_ns)
        sequence = int(self.store.get(NEXT_CONNECTION_SEQUENCE, b"0"))
        connection_id = f"connection-{sequence}"
        versions = (version,) if version is not None else (DEFAULT_VERSION,)
        self._put(connection_id, ConnectionEnd(INIT, client_id, replace(counterparty, connection_id=""), versions, delay_period_ns))
        self.store[NEXT_CONNECTION_SEQUENCE] = str(sequence + 1).encode()
        return connection_id

    def open_try(self, counterparty: Counterparty, delay_period_ns: int, client_id: str, counterparty_versions: list[dict],
                 proof_init: bytes, proof_height: int, now_ns: int) -> str:
        """ConnOpenTry: proves the counterparty's INIT end, then opens this side in TRYOPEN."""
        version = negotiate(counterparty_versions)
        self._active(client_id, now_ns)
        expected = ConnectionEnd(INIT, counterparty.client_id, Counterparty(client_id, "", counterparty.prefix),
                                 tuple(counterparty_versions), delay_period_ns)
        sequence = int(self.store.get(NEXT_CONNECTION_SEQUENCE, b"0"))
        connection_id = f"connection-{sequence}"
        end = ConnectionEnd(TRYOPEN, client_id, counterparty, (version,), delay_period_ns)
        self._verify_counterparty(end, counterparty.connection_id, expected, proof_init, proof_height, now_ns)
        self._put(connection_id, end)
        self.store[NEXT_CONNECTION_SEQUENCE] = str(sequence + 1).encode()
        return connection_id

    def open_ack(self, connection_id: str, counterparty_connection_id: str, version: dict, proof_try: bytes,
                 proof_height: int, now_ns: int) -> None:
        """ConnOpenAck: proves the counterparty's TRYOPEN end, then opens this side."""
        end = self.connection(connection_id)
        if end.state != INIT:
            raise IbcError("ErrInvalidConnectionState", f"connection {connection_id} is {end.state}, expected {INIT}")
        if not _supported(version) or not any(_subset(version, ours) for ours in end.versions):
            raise IbcError("ErrInvalidConnectionState", f"the counterparty selected version {version}, "
                           f"which is not one this connection proposed")
        expected = ConnectionEnd(TRYOPEN, end.counterparty.client_id,
                                 Counterparty(end.client_id, connection_id, end.counterparty.prefix), (version,), end.delay_period_ns)
        self._verify_counterparty(end, counterparty_connection_id, expected, proof_try, proof_height, now_ns)
        self._put(connection_id, replace(end, state=OPEN, versions=(version,),
                                         counterparty=replace(end.counterparty, connection_id=counterparty_connection_id)))

    def open_confirm(self, connection_id: str, proof_ack: bytes, proof_height: int, now_ns: int) -> None:
        """ConnOpenConfirm: proves the counterparty's end is OPEN, then opens this side."""
        end = self.connection(connection_id)
        if end.state != TRYOPEN:
            raise IbcError("ErrInvalidConnectionState", f"connection {connection_id} is {end.state}, expected {TRYOPEN}")
        expected = ConnectionEnd(OPEN, end.counterparty.client_id,
                                 Counterparty(end.client_id, connection_id, end.counterparty.prefix), end.versions, end.delay_period_ns)
        self._verify_counterparty(end, end.counterparty.connection_id, expected, proof_ack, proof_height, now_ns)
        self._put(connection_id, replace(end, state=OPEN))


def _subset(version: dict, proposed: dict) -> bool:
    return version.get("identifier") == proposed.get("identifier") and set(version["features"]) <= set(proposed["features"])
