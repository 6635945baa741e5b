"""ICS-02: the light client of a Plurigrid ledger and the 02-client keeper.

The cases of ibc-go's 02-client keeper tables (`../shared/ibc_conformance.md`) that apply to a Plurigrid
client run here under the same names with the same outcome; the rest are listed with why they do not
apply, and a test checks that the two lists cover the checklist.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

import plurigrid
from plurigrid.ibc.client import (
    ACTIVE,
    CLIENT_TYPE,
    EXPIRED,
    FROZEN,
    ClientState,
    ConsensusState,
    Header,
    Misbehaviour,
    signer_set_hash,
)
from plurigrid.ibc.errors import IbcError
from plurigrid.ibc.keeper import ClientKeeper
from plurigrid.state.identity import Identity

CHAIN = "grid-a"
HOUR_NS = 3600 * 10**9
TRUSTING_NS = 14 * 24 * HOUR_NS
T0 = 1_700_000_000 * 10**9
MEMBERS = [Identity.from_seed(bytes([i + 1]) * 32) for i in range(4)]
OTHERS = [Identity.from_seed(bytes([i + 101]) * 32) for i in range(4)]
DIDS = tuple(m.did for m in MEMBERS)
ROOT = "11" * 32


def header(height: int, *, trusted: int = 1, root: str = ROOT, time_ns: int | None = None, signers: list[Identity] = MEMBERS,
           next_signers: tuple[str, ...] = DIDS, chain: str = CHAIN) -> Header:
    time_ns = T0 + height * HOUR_NS if time_ns is None else time_ns
    return Header(chain, height, time_ns, root, next_signers, trusted).signed_by(signers)


def fresh() -> tuple[ClientKeeper, str]:
    keeper = ClientKeeper()
    client_id = keeper.create_client(CLIENT_TYPE, ClientState(CHAIN, TRUSTING_NS, 1), ConsensusState(T0 + HOUR_NS, ROOT, DIDS),
                                     now_ns=T0 + 2 * HOUR_NS)
    return keeper, client_id


NOW = T0 + 100 * HOUR_NS

# ---------------------------------------------------------------- TestCreateClient


CREATE: dict[str, tuple[str, ClientState, ConsensusState, str | None]] = {
    "success: plurigrid client type supported": (CLIENT_TYPE, ClientState(CHAIN, TRUSTING_NS, 1), ConsensusState(NOW, ROOT, DIDS), None),
    "failure: plurigrid client status is not active": (
        CLIENT_TYPE, ClientState(CHAIN, HOUR_NS, 1), ConsensusState(NOW - 2 * HOUR_NS, ROOT, DIDS), "ErrClientNotActive"),
    "failure: 09-localhost client type not supported": (
        "09-localhost", ClientState(CHAIN, TRUSTING_NS, 1), ConsensusState(NOW, ROOT, DIDS), "ErrInvalidClientType"),
}


@pytest.mark.parametrize("name", CREATE)
def test_create_client(name: str) -> None:
    client_type, client_state, consensus_state, error = CREATE[name]
    keeper = ClientKeeper()
    if error is None:
        client_id = keeper.create_client(client_type, client_state, consensus_state, NOW)
        assert client_id == "plurigrid-0" and keeper.module.status(client_id, NOW) == ACTIVE
        assert keeper.create_client(client_type, client_state, consensus_state, NOW) == "plurigrid-1"
    else:
        with pytest.raises(IbcError) as err:
            keeper.create_client(client_type, client_state, consensus_state, NOW)
        assert err.value.code == error
        assert keeper.store == {}  # nothing stored


# ---------------------------------------------------------------- TestUpdateClient (ibc-go: TestUpdateClientTendermint)


def _valid_update(keeper: ClientKeeper, cid: str) -> Header:
    return header(5)


def _valid_past_update(keeper: ClientKeeper, cid: str) -> Header:
    keeper.update_client(cid, header(10), NOW)
    return header(5)  # between the trusted height 1 and the latest 10


def _valid_duplicate_update(keeper: ClientKeeper, cid: str) -> Header:
    keeper.update_client(cid, header(5), NOW)
    return header(5)


def _conflicting_header(keeper: ClientKeeper, cid: str) -> Header:
    keeper.update_client(cid, header(5), NOW)
    return header(5, root="22" * 32)


def _monotonic_time_violation(keeper: ClientKeeper, cid: str) -> Header:
    keeper.update_client(cid, header(10), NOW)
    return header(5, time_ns=T0 + 11 * HOUR_NS)  # later than the consensus state above it


def _client_state_not_found(keeper: ClientKeeper, cid: str) -> Header:
    del keeper.store[f"clients/{cid}/clientState".encode()]
    return header(5)


def _consensus_state_not_found(keeper: ClientKeeper, cid: str) -> Header:
    return header(5, trusted=3)


def _client_is_not_active(keeper: ClientKeeper, cid: str) -> Header:
    keeper.module.update_state_on_misbehaviour(cid)
    return header(5)


def _invalid_header(keeper: ClientKeeper, cid: str) -> Header:
    return header(5, signers=MEMBERS[:2])


# name -> (set-up returning the header to submit, expected error code or None, whether the client ends frozen)
UPDATE: dict[str, tuple[Callable[[ClientKeeper, str], Header], str | None, bool]] = {
    "valid update": (_valid_update, None, False),
    "valid past update": (_valid_past_update, None, False),
    "valid duplicate update": (_valid_duplicate_update, None, False),
    "misbehaviour detection: conflicting header": (_conflicting_header, None, True),
    "misbehaviour detection: monotonic time violation": (_monotonic_time_violation, None, True),
    "client state not found": (_client_state_not_found, "ErrClientNotFound", False),
    "consensus state not found": (_consensus_state_not_found, "ErrConsensusStateNotFound", False),
    "client is not active": (_client_is_not_active, "ErrClientNotActive", True),
    "invalid header": (_invalid_header, "ErrInvalidHeader", False),
}


@pytest.mark.parametrize("name", UPDATE)
def test_update_client(name: str) -> None:
    setup, error, frozen = UPDATE[name]
    keeper, cid = fresh()
    message = setup(keeper, cid)
    latest_before = keeper.store.get(f"clients/{cid}/clientState".encode())
    if error is not None:
        with pytest.raises(IbcError) as err:
            keeper.update_client(cid, message, NOW)
        assert err.value.code == error
        assert keeper.store.get(f"clients/{cid}/clientState".encode()) == latest_before
    else:
        outcome = keeper.update_client(cid, message, NOW)
        assert outcome == ("frozen" if frozen else "updated")
        if not frozen:
            stored = keeper.module.consensus_state(cid, message.height)
            assert (stored.root, stored.timestamp_ns) == (message.state_root, message.time_ns)
            assert keeper.module.latest_height(cid) == max(message.height, 10 if name == "valid past update" else 0)
    if error != "ErrClientNotFound":
        assert (keeper.module.status(cid, NOW) == FROZEN) == frozen


# ---------------------------------------------------------------- TestRecoverClient


def _recover_pair() -> tuple[ClientKeeper, str, str]:
    """A frozen subject (latest height 5) and an Active substitute of the same chain at height 10."""
    keeper, subject = fresh()
    keeper.update_client(subject, header(5), NOW)
    keeper.module.update_state_on_misbehaviour(subject)
    substitute = keeper.create_client(CLIENT_TYPE, ClientState(CHAIN, TRUSTING_NS, 10),
                                      ConsensusState(T0 + 10 * HOUR_NS, "33" * 32, DIDS), NOW)
    return keeper, subject, substitute


def _subject_active(keeper: ClientKeeper, subject: str, substitute: str) -> tuple[str, str]:
    keeper.module._put_client(subject, ClientState(CHAIN, TRUSTING_NS, 5))  # unfrozen
    return subject, substitute


def _equal_heights(keeper: ClientKeeper, subject: str, substitute: str) -> tuple[str, str]:
    keeper.module._put_client(subject, ClientState(CHAIN, TRUSTING_NS, 10, frozen_height=1))
    return subject, substitute


def _subject_higher(keeper: ClientKeeper, subject: str, substitute: str) -> tuple[str, str]:
    keeper.module._put_client(subject, ClientState(CHAIN, TRUSTING_NS, 11, frozen_height=1))
    return subject, substitute


def _substitute_frozen(keeper: ClientKeeper, subject: str, substitute: str) -> tuple[str, str]:
    keeper.module.update_state_on_misbehaviour(substitute)
    return subject, substitute


def _other_chain(keeper: ClientKeeper, subject: str, substitute: str) -> tuple[str, str]:
    keeper.module._put_client(substitute, ClientState("grid-z", TRUSTING_NS, 10))
    return subject, substitute


RECOVER: dict[str, tuple[Callable[[ClientKeeper, str, str], tuple[str, str]], str | None]] = {
    "success": (lambda k, s, t: (s, t), None),
    "subject client does not exist": (lambda k, s, t: ("plurigrid-100", t), "ErrClientNotFound"),
    "subject is Active": (_subject_active, "ErrInvalidRecoveryClient"),
    "substitute client does not exist": (lambda k, s, t: (s, "plurigrid-100"), "ErrClientNotActive"),
    "subject and substitute have equal latest height": (_equal_heights, "ErrInvalidHeight"),
    "subject height is greater than substitute height": (_subject_higher, "ErrInvalidHeight"),
    "substitute is frozen": (_substitute_frozen, "ErrClientNotActive"),
    # ibc-go compares the two clients' trust levels; a Plurigrid client has one, so the chain it tracks stands in
    "light client module RecoverClient fails, substitute client trust level doesn't match subject client trust level":
        (_other_chain, "ErrInvalidSubstitute"),
}


@pytest.mark.parametrize("name", RECOVER)
def test_recover_client(name: str) -> None:
    keeper, subject, substitute = _recover_pair()
    setup, error = RECOVER[name]
    subject, substitute = setup(keeper, subject, substitute)
    before = dict(keeper.store)
    if error is not None:
        with pytest.raises(IbcError) as err:
            keeper.recover_client(subject, substitute, NOW)
        assert err.value.code == error
        assert keeper.store == before
        return
    keeper.recover_client(subject, substitute, NOW)
    assert keeper.status(subject, NOW) == ACTIVE and keeper.module.latest_height(subject) == 10
    assert keeper.module.consensus_state(subject, 10).root == "33" * 32
    assert keeper.update_client(subject, header(12, trusted=10), NOW) == "updated"  # trusted again from the new state


NOT_APPLICABLE = {
    "success: 07-tendermint client type supported": "a Plurigrid node tracks Plurigrid ledgers only (client type plurigrid)",
    "success: 06-solomachine client type supported": "as above: no solo machine client",
    "failure: 07-tendermint client status is not active": "run as 'failure: plurigrid client status is not active'",
    # TestRecoverClient's ninth case
    "success, subject and substitute use different revision number": "Plurigrid heights have no revision number",
    # TestUpgradeClient (4): a chain upgrade plan and its committed upgraded client; a lattice changes its signer set
    # through signed headers instead (test_signer_set_changes_only_through_the_trusted_set)
    "TestUpgradeClient": "no upgrade plans: signer sets change through headers the trusted set signed",
}


def test_the_checklists_02_client_cases_are_all_run_or_explained(testdata: Path) -> None:
    text = (testdata.parent / "ibc_conformance.md").read_text(encoding="utf-8")
    section = text[text.index("**02-client"):text.index("The ICS-02 **LightClientModule**")]
    listed = re.findall(r"^  - (.+)$", section.split("`TestUpgradeClient`")[0], flags=re.M)
    names = {n.strip('"') for line in listed for n in re.findall(r'"([^"]+)"', line)}
    assert len(names) == 13
    assert names <= set(CREATE) | set(UPDATE) | set(NOT_APPLICABLE), names - set(CREATE) - set(UPDATE) - set(NOT_APPLICABLE)
    # the recovery and upgrade cases the checklist names in prose
    prose = section.split("`TestUpgradeClient`")[1]
    assert {"subject is Active", "substitute is frozen"} <= set(re.findall(r'"([^"]+)"', prose)) <= set(RECOVER)
    assert "trust-level mismatch" in prose and "trust level doesn't match" in next(n for n in RECOVER if "trust level" in n)


# ---------------------------------------------------------------- signer sets, misbehaviour, expiry


def test_more_than_two_thirds_must_sign() -> None:
    keeper, cid = fresh()
    for signers, ok in ((MEMBERS[:2], False), (MEMBERS[:3], True)):  # 2 of 4 = 1/2; 3 of 4 > 2/3
        if ok:
            assert keeper.update_client(cid, header(3, signers=signers), NOW) == "updated"
        else:
            with pytest.raises(IbcError, match="signed by 2 of 4 trusted members"):
                keeper.update_client(cid, header(3, signers=signers), NOW)
    three = ClientKeeper()
    cid3 = three.create_client(CLIENT_TYPE, ClientState(CHAIN, TRUSTING_NS, 1), ConsensusState(T0 + HOUR_NS, ROOT, DIDS[:3]), NOW)
    with pytest.raises(IbcError, match="signed by 2 of 3"):  # exactly 2/3 is not enough
        three.update_client(cid3, header(2, signers=MEMBERS[:2], next_signers=DIDS[:3]), NOW)


def test_forged_and_foreign_signatures_do_not_count() -> None:
    keeper, cid = fresh()
    forged = header(4)
    sigs = dict(forged.signatures)
    sigs[DIDS[0]] = sigs[DIDS[0]][:-2] + ("00" if sigs[DIDS[0]][-2:] != "00" else "01")
    sigs[DIDS[1]] = "zz"
    forged = Header(**{**forged.__dict__, "signatures": tuple(sorted(sigs.items()))})
    with pytest.raises(IbcError, match="signed by 2 of 4"):
        keeper.update_client(cid, forged, NOW)
    with pytest.raises(IbcError, match="signed by 0 of 4"):
        keeper.update_client(cid, header(4, signers=OTHERS), NOW)
    with pytest.raises(IbcError, match="header of chain 'grid-b'"):
        keeper.update_client(cid, header(4, chain="grid-b"), NOW)
    moved = header(4)
    tampered = Header(**{**moved.__dict__, "state_root": "33" * 32})  # the signatures were over another root
    with pytest.raises(IbcError, match="signed by 0 of 4"):
        keeper.update_client(cid, tampered, NOW)


def test_signer_set_changes_only_through_the_trusted_set() -> None:
    keeper, cid = fresh()
    new = tuple(o.did for o in OTHERS)
    assert keeper.update_client(cid, header(2, next_signers=new), NOW) == "updated"  # signed by the old set
    assert keeper.module.consensus_state(cid, 2).next_signers == new
    with pytest.raises(IbcError, match="signed by 0 of 4"):  # the old set no longer signs from height 2 on
        keeper.update_client(cid, header(3, trusted=2, next_signers=new), NOW)
    assert keeper.update_client(cid, header(3, trusted=2, signers=OTHERS, next_signers=new), NOW) == "updated"
    assert signer_set_hash(new) == signer_set_hash(reversed(new))


def test_misbehaviour_of_two_valid_headers_freezes_and_stops_proofs() -> None:
    keeper, cid = fresh()
    evidence = Misbehaviour(header(7), header(7, root="44" * 32))
    assert keeper.update_client(cid, evidence, NOW) == "frozen"
    assert keeper.module.status(cid, NOW) == FROZEN
    with pytest.raises(IbcError) as err:
        keeper.module.verify_membership(cid, 1, b"", b"k", b"v", NOW)
    assert err.value.code == "ErrClientNotActive"
    keeper2, cid2 = fresh()
    with pytest.raises(IbcError, match="signed by 1 of 4"):  # evidence must be signed as headers are
        keeper2.update_client(cid2, Misbehaviour(header(7), header(7, root="44" * 32, signers=MEMBERS[:1])), NOW)
    with pytest.raises(IbcError, match="no misbehaviour"):
        keeper2.update_client(cid2, Misbehaviour(header(7), header(7)), NOW)


def test_a_client_expires_after_its_trusting_period() -> None:
    keeper, cid = fresh()
    assert keeper.module.status(cid, T0 + HOUR_NS + TRUSTING_NS - 1) == ACTIVE
    assert keeper.module.status(cid, T0 + HOUR_NS + TRUSTING_NS) == EXPIRED
    with pytest.raises(IbcError) as err:
        keeper.update_client(cid, header(2), T0 + HOUR_NS + TRUSTING_NS)
    assert err.value.code == "ErrClientNotActive"


def test_proofs_from_a_real_run_verify_against_the_header_it_signed(tmp_path) -> None:
    """A run's ledger root, signed as a header by the members, lets the client check its accounts (and absences)."""
    from plurigrid.state.ledger import prove

    run = plurigrid.load("hello", hours=2).run(out=tmp_path / "run", signer_key=tmp_path / "key")
    head = run.ledger
    keeper, cid = fresh()
    keeper.update_client(cid, header(head["height"] + 1, root=head["state_root"]), NOW)
    height = head["height"] + 1
    vector = prove(run.folder, "accounts/load1")
    proof, key, value = bytes.fromhex(vector["proof"]), bytes.fromhex(vector["key"]), bytes.fromhex(vector["value"])
    keeper.module.verify_membership(cid, height, proof, key, value, NOW)
    with pytest.raises(IbcError) as err:
        keeper.module.verify_membership(cid, height, proof, key, value.replace(b"1", b"2", 1), NOW)
    assert err.value.code == "ErrInvalidProof"
    absent = prove(run.folder, "accounts/nobody")
    keeper.module.verify_non_membership(cid, height, bytes.fromhex(absent["proof"]), b"accounts/nobody", NOW)
    with pytest.raises(IbcError) as err:
        keeper.module.verify_non_membership(cid, height, proof, key, NOW)
    assert err.value.code == "ErrInvalidProof"
    with pytest.raises(IbcError) as err:
        keeper.module.verify_membership(cid, height, b"\xff\x00garbage", key, value, NOW)
    assert err.value.code == "ErrInvalidProof"
    with pytest.raises(IbcError) as err:
        keeper.module.verify_membership(cid, height + 5, proof, key, value, NOW)
    assert err.value.code == "ErrInvalidHeight"


def test_expired_consensus_states_are_pruned_on_update() -> None:
    keeper, cid = fresh()
    keeper.update_client(cid, header(2), NOW)
    later = T0 + 2 * HOUR_NS + TRUSTING_NS  # height 2's state expires now; the client's latest state is height 3's
    keeper.update_client(cid, header(3, trusted=2, time_ns=later - HOUR_NS), later - 2 * HOUR_NS)
    assert keeper.module._heights(cid) == [1, 2, 3]  # nothing expired yet
    keeper.update_client(cid, header(4, trusted=3, time_ns=later), later)
    assert keeper.module._heights(cid) == [3, 4]
    with pytest.raises(IbcError) as err:
        keeper.module.verify_membership(cid, 2, b"", b"k", b"v", later)
    assert err.value.code == "ErrConsensusStateNotFound"
