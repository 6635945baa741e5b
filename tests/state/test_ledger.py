"""The settlement ledger: blocks replay to their roots, money and energy are conserved, tampering is found."""

import json
import random
import shutil
import sqlite3
from pathlib import Path

import pytest

import plurigrid
from plurigrid.engine.ledger_entries import run_signer
from plurigrid.state import ledger as L
from plurigrid.state.ics23 import JMT_SPEC, decode_commitment_proof, verify_membership, verify_non_membership

from ..recorded import Recorded


@pytest.fixture(scope="module")
def hello_run(tmp_path_factory) -> tuple[Path, object]:
    """hello simulated once with its ledger: (run folder, run record)."""
    folder = tmp_path_factory.mktemp("hello")
    return folder, Recorded(plurigrid.load("hello").run(out=folder))


@pytest.fixture
def run_copy(hello_run, tmp_path) -> Path:
    shutil.copytree(hello_run[0], tmp_path / "run")
    return tmp_path / "run"


def _blocks(run: Path) -> Path:
    return run / "ledger" / L.BLOCKS


def test_ledger_verifies_and_has_one_block_per_interval(hello_run):
    run, record = hello_run
    head = L.verify(run)
    assert head.height == record.world.steps
    lines = _blocks(run).read_bytes().splitlines()
    assert [json.loads(line)["header"]["interval"] for line in lines] == list(range(record.world.steps))


def test_balances_conserve_money_and_match_the_bills(hello_run):
    run, record = hello_run
    height, accounts = L.balances(run)
    assert sum(a["balance_micro"] for a in accounts.values()) == 0
    bills = record.participant["bill_micro"].sum(axis=0)
    for pid, bill in zip(record.world.ids, bills):
        assert accounts.get(pid, {"balance_micro": 0})["balance_micro"] == -int(bill), pid
    metered = record.participant["metered_wh"]
    for i, pid in enumerate(record.world.ids):
        a = accounts.get(pid, {"imported_wh": 0, "exported_wh": 0})
        assert a["imported_wh"] - a["exported_wh"] == int(metered[:, i].sum()), pid


def test_every_block_conserves_energy(hello_run):
    for line in _blocks(hello_run[0]).read_bytes().splitlines():
        entries = json.loads(line)["entries"]
        assert sum(entries.get("meters", {}).get("wh", [])) + entries["grid"]["losses_wh"] == entries["grid"]["upstream_wh"]


def test_account_proofs_verify_at_their_height_only(hello_run):
    run, record = hello_run
    pid = record.world.ids[0]
    key = L.account_key(pid)
    vectors = {h: L.prove(run, key.decode(), h) for h in (1, 2, record.world.steps)}
    for h, v in vectors.items():
        proof = decode_commitment_proof(bytes.fromhex(v["proof"]))
        root, value = bytes.fromhex(v["root"]), bytes.fromhex(v["value"])
        assert json.loads(value)["height"] <= h
        assert verify_membership(JMT_SPEC, root, proof, key, value)
        other_root = bytes.fromhex(vectors[1 if h != 1 else 2]["root"])
        assert not verify_membership(JMT_SPEC, other_root, proof, key, value)
    absent = L.prove(run, "accounts/nobody")
    assert absent["value"] == ""
    assert verify_non_membership(JMT_SPEC, bytes.fromhex(absent["root"]),
                                 decode_commitment_proof(bytes.fromhex(absent["proof"])), b"accounts/nobody")


def _line_of(data: bytes, position: int) -> int:
    return data[:position].count(b"\n") + 1


def _altered(byte: int) -> int:
    c = chr(byte)
    if c.isdigit():
        return ord("7" if c != "7" else "3")
    if c in "abcdef":
        return ord("a" if c != "a" else "b")
    return byte ^ 0x01


@pytest.mark.parametrize("seed", range(40))
def test_any_altered_byte_names_its_block(run_copy, seed):
    path = _blocks(run_copy)
    data = bytearray(path.read_bytes())
    position = random.Random(seed).randrange(len(data))
    data[position] = _altered(data[position])
    path.write_bytes(bytes(data))
    block = _line_of(bytes(data), position)
    with pytest.raises(L.LedgerError, match=rf"^block {block}: "):
        L.verify(run_copy)


def test_dropped_last_block_is_found(run_copy):
    path = _blocks(run_copy)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))
    with pytest.raises(L.LedgerError, match=rf"^block {len(lines)}: missing from blocks.jsonl"):
        L.verify(run_copy)


def test_swapped_blocks_are_found(run_copy):
    path = _blocks(run_copy)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[3], lines[4] = lines[4], lines[3]
    path.write_bytes(b"".join(lines))
    with pytest.raises(L.LedgerError, match=r"^block 4: header says height 5"):
        L.verify(run_copy)


def test_forged_block_with_consistent_hashes_is_found(run_copy):
    """An attacker who rewrites a bill, recomputes every hash and even holds the signing key still cannot match
    state.sqlite."""
    path = _blocks(run_copy)
    lines = path.read_bytes().splitlines(keepends=True)
    block = json.loads(lines[-1])
    settle = block["entries"]["settlements"]
    settle["bill_micro"][0] -= 1_000_000
    settle["market_micro"][0] -= 1_000_000
    replay = L.Store(":memory:", log=False)
    accounts = L.Accounts.empty()
    for line in lines[:-1]:
        b = json.loads(line)
        tx = replay.begin()
        accounts = L.apply_block(accounts, tx, L.Header(**b["header"]), b["entries"])
        replay.commit(tx)
    header = L.Header(**{**block["header"], "entries_hash": L.sha256_hex(L.canonical(block["entries"]))})
    tx = replay.begin()
    L.apply_block(accounts, tx, header, block["entries"])
    forged = L.Header(**{**header.to_json(), "state_root": replay.commit(tx).root.hex()})
    lines[-1] = L.block_line(forged, L.canonical(block["entries"]), L.sign_header(forged, run_signer()))
    path.write_bytes(b"".join(lines))
    with pytest.raises(L.LedgerError, match=rf"^block {len(lines)}: state.sqlite holds root"):
        L.verify(run_copy)


@pytest.mark.parametrize("change", [b'"balance_micro":9', b'"balance_micro":-'])
def test_altered_state_file_is_found(run_copy, change):
    db = sqlite3.connect(run_copy / "ledger" / L.STATE)
    version, state = db.execute("SELECT version, state FROM checkpoints").fetchone()
    at = state.index(b'"balance_micro":') + len(change)
    altered = state[:at - 1] + change[-1:] + state[at:]  # one byte of a balance, the length unchanged
    db.execute("UPDATE checkpoints SET state = ? WHERE version = ?", (altered, version))
    db.commit()
    db.close()
    with pytest.raises(L.LedgerError, match=rf"state.sqlite: unreadable .*version {version} does not rebuild to its "
                                            r"recorded root \(corrupt store\)"):
        L.verify(run_copy)


def test_altered_root_in_state_file_is_found(run_copy):
    db = sqlite3.connect(run_copy / "ledger" / L.STATE)
    db.execute("UPDATE versions SET root = ? WHERE version = 3", (b"\x01" * 32,))
    db.commit()
    db.close()
    with pytest.raises(L.LedgerError, match=r"^block 3: state.sqlite holds root 0101"):
        L.verify(run_copy)


def test_unfinished_last_line_is_dropped_on_reopen(run_copy):
    folder = run_copy / "ledger"
    height = L.verify(run_copy).height
    with _blocks(run_copy).open("ab") as f:  # a block line the crash left unfinished
        f.write(b'{"entries":{"gr')
    verdict = L.check(run_copy)
    assert (verdict.head.height, verdict.torn_bytes, verdict.prefix) == (height, 15, True)
    ledger = L.Ledger(folder, signer=run_signer())
    assert ledger.height == height
    ledger.append(height, "2024-06-22T00:00:00+02:00", {"grid": {"upstream_wh": 5, "losses_wh": 5}})
    ledger.close()
    assert L.verify(folder).height == height + 1


def test_a_whole_bad_last_line_is_refused_on_reopen_not_dropped(run_copy):
    """Only an unfinished line can be a crash's; a whole line that does not verify is named, and kept as evidence."""
    with _blocks(run_copy).open("ab") as f:
        f.write(b'{"entries":{},"header":{"height":99}}\n')
    size = _blocks(run_copy).stat().st_size
    with pytest.raises(L.LedgerError, match=r"^block 25: not a block"):
        L.Ledger(run_copy / "ledger", signer=run_signer())
    assert _blocks(run_copy).stat().st_size == size
    with L.Store(run_copy / "ledger" / L.STATE) as store:
        assert store.meta("ledger_open") == 0  # a refused reopen leaves the ledger marked as its writer closed it


def test_blocks_after_the_last_checkpoint_are_replayed_on_reopen(run_copy, tmp_path):
    """A process that died after writing blocks but before its next checkpoint loses none of them."""
    folder = run_copy / "ledger"
    head = L.verify(run_copy)
    ledger = L.Ledger(folder, signer=run_signer())
    for k in range(3):
        ledger.append(head.interval + 1 + k, f"t{k}", {"grid": {"upstream_wh": 5 + k, "losses_wh": 5 + k}})
    expected = ledger.head
    ledger.store.discard()  # dies: no checkpoint of the three blocks
    verdict = L.check(folder)
    assert verdict.head == expected and verdict.prefix and not verdict.closed  # the blocks are the record
    assert L.balances(folder)[0] == expected.height
    assert L.prove(folder, "accounts/grid-operator")["root"] == expected.state_root
    again = L.Ledger(folder, signer=run_signer())
    assert (again.height, again.head) == (expected.height, expected)
    again.close()
    verdict = L.check(folder)
    assert verdict.head == expected and verdict.closed and not verdict.prefix
    with pytest.raises(L.LedgerError, match=r"summary.json: ledger.height is 24, but the ledger's is 27"):
        L.check(run_copy)  # the run's summary names the head it left, not the blocks appended since


def test_long_ledgers_seal_their_blocks_into_zstd_segments(tmp_path, monkeypatch):
    from plurigrid.state import blocklog

    monkeypatch.setattr(blocklog, "SEAL_BYTES", 2_000)
    ledger = L.Ledger(tmp_path / "ledger", create=True)
    ledger.append(0, "t0", {"accounts": ["a", "b"]})
    for k in range(1, 40):
        ledger.append(k, f"t{k}", {"meters": {"participant": [0, 1], "wh": [k, -k]}, "grid": {"upstream_wh": 7, "losses_wh": 7}})
    head = ledger.head
    ledger.close()
    segments = sorted(p.name for p in (tmp_path / "ledger").glob("blocks-*.jsonl.zst"))
    assert len(segments) >= 2 and segments[0].startswith("blocks-000000000001-")
    assert L.verify(tmp_path) == head
    assert [r["metered_wh"] for r in L.history(tmp_path, "a")] == [0] + list(range(1, 40))
    again = L.Ledger(tmp_path / "ledger")
    again.append(40, "t40", {"grid": {"upstream_wh": 0, "losses_wh": 0}})
    again.close()
    assert L.verify(tmp_path).height == 41


FORMAT1 = Path(__file__).parent / "data" / "format1-hello"

def test_group_commit_syncs_the_blocks_before_any_checkpoint_of_them(tmp_path, monkeypatch):
    """With sync_interval_s, blocks are fsynced together, but never after a checkpoint that stands for them."""
    from plurigrid.state import blocklog

    events: list[str] = []
    real_fsync = blocklog.os.fsync
    monkeypatch.setattr(blocklog.os, "fsync", lambda fd: (events.append("blocks"), real_fsync(fd))[1])
    ledger = L.Ledger(tmp_path / "ledger", create=True, sync_interval_s=3600)
    real_checkpoint = ledger.store.checkpoint
    monkeypatch.setattr(ledger.store, "checkpoint", lambda: (events.append("state"), real_checkpoint())[1])
    ledger.append(0, "t0", {"accounts": ["a", "b"]})
    for k in range(1, 5):
        ledger.append(k, f"t{k}", {"meters": {"participant": [0, 1], "wh": [k, -k]}, "grid": {"upstream_wh": 0, "losses_wh": 0}})
    assert events == []  # five blocks appended, none fsynced yet
    ledger.checkpoint()
    assert events == ["blocks", "state"]
    ledger.append(5, "t5", {"grid": {"upstream_wh": 0, "losses_wh": 0}})
    head = ledger.head
    ledger.close()
    assert events == ["blocks", "state", "blocks", "state"]
    assert L.verify(tmp_path) == head



def test_a_format1_ledger_still_verifies_and_proves_byte_for_byte(tmp_path):
    shutil.copytree(FORMAT1, tmp_path / "run")
    run = tmp_path / "run"
    head = L.verify(run)
    assert (head.height, head.state_root) == (24, "530804228363b0dcb7f207ed6320d8fdd4ae8e8c007212aaeecd29d38bcb1d45")
    expected = json.loads((FORMAT1 / "proofs.json").read_text())
    for label, vector in expected.items():
        height, key = label.split(":", 1)
        assert L.prove(run, key, int(height)) == vector, label
    height, accounts = L.balances(run)
    assert height == 24 and sum(a["balance_micro"] for a in accounts.values()) == 0


def test_a_format1_ledger_with_an_altered_row_is_found(tmp_path):
    shutil.copytree(FORMAT1, tmp_path / "run")
    db = sqlite3.connect(tmp_path / "run" / L.STATE)
    db.execute("UPDATE kv SET value = ? WHERE key = ? AND version = 24", (b'{"balance_micro":1}', b"accounts/load1"))
    db.commit()
    db.close()
    with pytest.raises(L.LedgerError, match=r"^state.sqlite: its kv differ from the replayed blocks"):
        L.verify(tmp_path / "run")


def test_a_format1_ledger_is_not_written_to(tmp_path):
    shutil.copytree(FORMAT1, tmp_path / "run")
    with pytest.raises(L.LedgerError, match="store format 1"):
        L.Ledger(tmp_path / "run")


@pytest.mark.parametrize("entries, message", [
    ({"meters": {"participant": [0], "wh": [10]}, "grid": {"upstream_wh": 0, "losses_wh": 0}},
     "energy does not balance: metered 10 Wh \\+ losses 0 Wh != upstream 0 Wh"),
    ({"settlements": {"participant": [0], "traded_wh": [0], "market_micro": [1], "tariff_micro": [0], "fee_micro": [0],
                      "bill_micro": [2]}}, "a bill is not the sum of its market, tariff and fee parts"),
    ({"meters": {"participant": [5], "wh": [0]}}, "meters.participant refers to an account the ledger has not opened"),
    ({"meters": {"participant": [0], "wh": [1.5]}, "grid": {"upstream_wh": 1, "losses_wh": 0}}, "meters.wh: values must be integers"),
    ({"accounts": ["grid-operator"]}, "accounts opens a name twice"),
    ({"refunds": {}}, "entries must hold only"),
])
def test_entries_that_break_the_rules_are_refused(tmp_path, entries, message):
    ledger = L.Ledger(tmp_path / "ledger", create=True)
    ledger.append(0, "t0", {"accounts": ["a", "b"]})
    with pytest.raises(L.LedgerError, match=f"^block 2: {message}"):
        ledger.append(1, "t1", entries)
    assert ledger.height == 1  # nothing committed by the refused block
    ledger.close()
    assert L.verify(tmp_path).height == 1
