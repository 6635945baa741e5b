"""ICS-03: the connection handshake between two ledgers, each step proven through the other's light client.

ibc-go's 03-connection keeper cases (`../shared/ibc_conformance.md`) run under their own names with the
same outcomes; a test checks every case of that section is run here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path as FilePath

import pytest

from plurigrid.ibc.connection import DEFAULT_VERSION, INIT, OPEN, TRYOPEN
from plurigrid.ibc.errors import IbcError
from tests.ibc.chains import HOUR_NS, Path, ack, confirm, init, try_open


def test_the_handshake_opens_both_ends() -> None:
    path = Path()
    conn_a = init(path)
    assert path.a.connections.connection(conn_a).state == INIT
    conn_b = try_open(path, conn_a)
    assert path.b.connections.connection(conn_b).state == TRYOPEN
    ack(path, conn_a, conn_b)
    confirm(path, conn_b, conn_a)
    a, b = path.a.connections.connection(conn_a), path.b.connections.connection(conn_b)
    assert (a.state, b.state) == (OPEN, OPEN)
    assert (a.counterparty.connection_id, b.counterparty.connection_id) == (conn_b, conn_a)
    assert (a.counterparty.client_id, b.counterparty.client_id) == (path.b_client, path.a_client)
    assert a.versions == b.versions == (DEFAULT_VERSION,)


def _frozen(path: Path) -> None:
    path.a.clients.module.update_state_on_misbehaviour(path.a_client)


def _unauthorized(path: Path) -> None:
    path.a.clients.allowed_clients = ()


INIT_CASES: dict[str, tuple[Callable[[Path], str], str | None]] = {
    "success": (lambda p: init(p), None),
    "success with empty counterparty identifier": (lambda p: init(p), None),
    "success with non empty version": (lambda p: init(p, version=DEFAULT_VERSION), None),
    "success with non zero delayPeriod": (lambda p: init(p, delay=HOUR_NS), None),
    "invalid version": (lambda p: init(p, version={"identifier": "bad", "features": []}), "ErrInvalidVersion"),
    "couldn't add connection to client": (lambda p: init(p, client="plurigrid-7"), "ErrClientNotActive"),
    "unauthorized client": (lambda p: (_unauthorized(p), init(p))[1], "ErrClientNotActive"),
}


@pytest.mark.parametrize("name", INIT_CASES)
def test_conn_open_init(name: str) -> None:
    run, error = INIT_CASES[name]
    path = Path()
    if error is None:
        conn = run(path)
        end = path.a.connections.connection(conn)
        assert end.state == INIT and end.counterparty.connection_id == "" and end.versions == (DEFAULT_VERSION,)
        assert end.delay_period_ns == (HOUR_NS if "delayPeriod" in name else 0)
    else:
        with pytest.raises(IbcError) as err:
            run(path)
        assert err.value.code == error


TRY_CASES: dict[str, tuple[Callable[[Path, str], str], str | None]] = {
    "success": (lambda p, c: try_open(p, c), None),
    "success with delay period": (lambda p, c: try_open(p, c, delay=HOUR_NS), None),
    "counterparty versions is empty": (lambda p, c: try_open(p, c, versions=[]), "ErrVersionNegotiationFailed"),
    "counterparty versions don't have a match": (
        lambda p, c: try_open(p, c, versions=[{"identifier": "0.0", "features": []}]), "ErrVersionNegotiationFailed"),
    "connection state verification failed": (lambda p, c: try_open(p, c, counterparty_client="plurigrid-5"), "ErrInvalidProof"),
}


@pytest.mark.parametrize("name", TRY_CASES)
def test_conn_open_try(name: str) -> None:
    run, error = TRY_CASES[name]
    path = Path()
    conn_a = init(path, delay=HOUR_NS if "delay" in name else 0)
    if error is None:
        conn_b = run(path, conn_a)
        end = path.b.connections.connection(conn_b)
        assert end.state == TRYOPEN and end.counterparty.connection_id == conn_a
    else:
        before = dict(path.b.view.tx.items())
        with pytest.raises(IbcError) as err:
            run(path, conn_a)
        assert err.value.code == error
        assert not any(k.startswith(b"connections/") for k in set(dict(path.b.view.tx.items())) - set(before))


def _not_init(path: Path, conn_a: str, conn_b: str) -> None:
    end = path.a.connections.connection(conn_a)
    path.a.connections._put(conn_a, end.__class__(TRYOPEN, end.client_id, end.counterparty, end.versions, end.delay_period_ns))
    ack(path, conn_a, conn_b)


ACK_CASES: dict[str, tuple[Callable[[Path, str, str], None], str | None]] = {
    "success": (lambda p, a, b: ack(p, a, b), None),
    "connection not found": (lambda p, a, b: ack(p, "connection-42", b), "ErrConnectionNotFound"),
    "invalid counterparty connection ID": (lambda p, a, b: ack(p, a, "connection-42", proven=b), "ErrInvalidProof"),
    "connection state is not INIT": (_not_init, "ErrInvalidConnectionState"),
    "connection is in INIT but the proposed version is invalid": (
        lambda p, a, b: ack(p, a, b, version={"identifier": "2", "features": ["ORDER_ORDERED"]}), "ErrInvalidConnectionState"),
    "incompatible IBC versions": (
        lambda p, a, b: ack(p, a, b, version={"identifier": "2.0", "features": ["ORDER_UNORDERED"]}), "ErrInvalidConnectionState"),
    "empty version": (lambda p, a, b: ack(p, a, b, version={}), "ErrInvalidConnectionState"),
    "feature set verification failed - unsupported feature": (
        lambda p, a, b: ack(p, a, b, version={"identifier": "1", "features": ["ORDER_DAG"]}), "ErrInvalidConnectionState"),
    "connection state verification failed": (
        lambda p, a, b: ack(p, a, b, version={"identifier": "1", "features": ["ORDER_ORDERED"]}), "ErrInvalidProof"),
}


@pytest.mark.parametrize("name", ACK_CASES)
def test_conn_open_ack(name: str) -> None:
    run, error = ACK_CASES[name]
    path = Path()
    conn_a = init(path)
    conn_b = try_open(path, conn_a)
    if error is None:
        run(path, conn_a, conn_b)
        end = path.a.connections.connection(conn_a)
        assert end.state == OPEN and end.counterparty.connection_id == conn_b
    else:
        with pytest.raises(IbcError) as err:
            run(path, conn_a, conn_b)
        assert err.value.code == error
        if name != "connection state is not INIT":
            assert path.a.connections.connection(conn_a).state == INIT


def _b_not_tryopen(path: Path, conn_b: str, conn_a: str) -> None:
    end = path.b.connections.connection(conn_b)
    path.b.connections._put(conn_b, end.__class__(INIT, end.client_id, end.counterparty, end.versions, end.delay_period_ns))
    confirm(path, conn_b, conn_a)


CONFIRM_CASES: dict[str, tuple[Callable[[Path, str, str], None], str | None, bool]] = {
    "success": (lambda p, b, a: confirm(p, b, a), None, True),
    "connection not found": (lambda p, b, a: confirm(p, "connection-42", a), "ErrConnectionNotFound", True),
    "chain B's connection state is not TRYOPEN": (_b_not_tryopen, "ErrInvalidConnectionState", True),
    "connection state verification failed": (lambda p, b, a: confirm(p, b, a), "ErrInvalidProof", False),
}


@pytest.mark.parametrize("name", CONFIRM_CASES)
def test_conn_open_confirm(name: str) -> None:
    run, error, acked = CONFIRM_CASES[name]
    path = Path()
    conn_a = init(path)
    conn_b = try_open(path, conn_a)
    if acked:
        ack(path, conn_a, conn_b)
    if error is None:
        run(path, conn_b, conn_a)
        assert path.b.connections.connection(conn_b).state == OPEN
    else:
        with pytest.raises(IbcError) as err:
            run(path, conn_b, conn_a)  # without the ack, A's end is still INIT: its proof cannot show OPEN
        assert err.value.code == error


def test_the_checklists_03_connection_cases_are_all_run(testdata: FilePath) -> None:
    text = (testdata.parent / "ibc_conformance.md").read_text(encoding="utf-8")
    section = text[text.index("**03-connection"):text.index("**02-client")]
    names = set(re.findall(r'"([^"]+)"', section.split("- Note:")[0]))
    run = set(INIT_CASES) | set(TRY_CASES) | set(ACK_CASES) | set(CONFIRM_CASES)
    assert len(names) == 19 and names <= run, names - run  # 25 cases, some names shared by several tests
