"""Signed ledgers: every block header is signed by the run's key, beside the header and outside the state.

What a user relies on: `ledger verify --expect-signer DID` accepts only ledgers that DID signed, so a
ledger rewritten consistently (blocks and state recomputed) by someone without the key fails; the same
world, seed and key give the same bytes, and signing never changes a state root.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

import plurigrid
from plurigrid.engine.ledger_entries import SIGNER_KEY_ENV, run_signer
from plurigrid.state import ledger as L
from plurigrid.state.blocklog import BlockLog
from plurigrid.state.identity import Identity, verify
from tests.cli.test_cli import plurigrid as cli

FORMAT1 = Path(__file__).parent / "data" / "format1-hello"
FORGED_BLOCK = 10  # the block whose bill a forger lowers


@pytest.fixture(scope="module")
def signed(tmp_path_factory) -> tuple[plurigrid.World, Path, Path]:
    """hello run once with its own key: (world, key file, run folder)."""
    root = tmp_path_factory.mktemp("signed")
    world = plurigrid.load("hello")
    world.run(out=root / "run", signer_key=root / "a.key")
    return world, root / "a.key", root / "run"


@pytest.fixture
def run_copy(signed, tmp_path) -> Path:
    shutil.copytree(signed[2], tmp_path / "run")
    return tmp_path / "run"


def _lines(run: Path) -> list[bytes]:
    return list(BlockLog(run / "ledger", writable=False).lines())


def _blocks(lines: list[bytes]) -> list[dict]:
    return [json.loads(line) for line in lines]


def _write(run: Path, blocks: list[dict]) -> None:
    (run / "ledger" / L.BLOCKS).write_bytes(b"".join(L.canonical(b) + b"\n" for b in blocks))


def _forge(run: Path, signer: Identity | None) -> None:
    """Rewrites the run's ledger consistently: block FORGED_BLOCK's first bill lowered by 1 EUR, every hash, root,
    checkpoint and the summary recomputed, signed by `signer` (None: unsigned)."""
    blocks = _blocks(_lines(run))
    settle = blocks[FORGED_BLOCK - 1]["entries"]["settlements"]
    settle["bill_micro"][0] -= 1_000_000
    settle["market_micro"][0] -= 1_000_000
    ledger = L.Ledger(run / "ledger", create=True, signer=signer)
    for block in blocks:
        ledger.append(block["header"]["interval"], block["header"]["time"], block["entries"])
    head = ledger.head
    ledger.close()
    summary = json.loads((run / "summary.json").read_text())
    summary["ledger"] = {"height": head.height, "head": head.hash, "state_root": head.state_root,
                         "signer": None if signer is None else signer.did}
    (run / "summary.json").write_text(json.dumps(summary))


def test_every_block_is_signed_by_the_run_key_and_the_summary_names_it(signed):
    _, key, run = signed
    did = Identity.load(key).did
    assert key.stat().st_mode & 0o777 == 0o600
    blocks = _blocks(_lines(run))
    for block in blocks:
        header, signature = L.Header(**block["header"]), block["signature"]
        assert signature["signer"] == did
        assert verify(did, bytes.fromhex(signature["ed25519"]), L.signing_message(header))
        assert not verify(did, bytes.fromhex(signature["ed25519"]), L.signing_message(L.Header(
            **{**block["header"], "time": "1999-01-01T00:00:00+00:00"})))  # it signs this header only
    summary = json.loads((run / "summary.json").read_text())
    assert summary["ledger"]["signer"] == did == L.check(run, expect_signer=did).signer
    res = cli("ledger", "verify", str(run), "--expect-signer", did)
    assert res.returncode == 0 and res.stdout.strip().endswith(f", signed by {did}"), res.stderr


def test_the_same_key_gives_the_same_bytes_and_another_key_the_same_roots(signed, tmp_path):
    world, key, run = signed
    world.run(out=tmp_path / "same", signer_key=key)
    for name in (L.BLOCKS, L.STATE):
        assert (tmp_path / "same" / "ledger" / name).read_bytes() == (run / "ledger" / name).read_bytes(), name
    world.run(out=tmp_path / "other", signer_key=tmp_path / "b.key")
    ours, theirs = _blocks(_lines(run)), _blocks(_lines(tmp_path / "other"))
    assert [b["header"] for b in ours] == [b["header"] for b in theirs]  # roots and hashes do not depend on the key
    assert all(a["signature"] != b["signature"] for a, b in zip(ours, theirs))
    assert (tmp_path / "other" / "ledger" / L.STATE).read_bytes() == (run / "ledger" / L.STATE).read_bytes()


def test_a_consistent_rewrite_with_a_fresh_key_fails_once_the_signer_is_pinned(signed, run_copy):
    did = Identity.load(signed[1]).did
    fresh = Identity.generate()
    _forge(run_copy, fresh)
    assert L.check(run_copy).signer == fresh.did  # consistent: only the signer gives it away
    res = cli("ledger", "verify", str(run_copy), "--expect-signer", did)
    assert res.returncode == 1
    assert res.stderr == f"plurigrid: invalid: signed by {fresh.did}, not by the expected {did}\n"


@pytest.mark.parametrize("how", ["old signatures", "another key's signatures"])
def test_a_rewrite_that_keeps_the_did_but_lacks_the_key_always_fails(signed, run_copy, how):
    did = Identity.load(signed[1]).did
    original = _blocks(_lines(run_copy))
    other = Identity.generate()
    _forge(run_copy, other if how == "another key's signatures" else None)
    forged = _blocks(_lines(run_copy))
    for block, old in zip(forged, original):
        block["signature"] = old["signature"] if how == "old signatures" else {**block["signature"], "signer": did}
    _write(run_copy, forged)
    first = FORGED_BLOCK if how == "old signatures" else 1  # blocks before the forged one keep their true headers
    for expect in (None, did):
        with pytest.raises(L.LedgerError, match=rf"^block {first}: its signature is not {did}'s signature of its header"):
            L.check(run_copy, expect_signer=expect)


def test_one_block_signed_by_another_key_is_named(run_copy):
    blocks = _blocks(_lines(run_copy))
    other = Identity.generate()
    blocks[6]["signature"] = L.sign_header(L.Header(**blocks[6]["header"]), other)
    _write(run_copy, blocks)
    with pytest.raises(L.LedgerError, match=rf"^block 7: signed by {other.did}, but the blocks before it by did:key:"):
        L.check(run_copy)


def test_stripped_signatures_verify_only_as_unsigned(signed, run_copy):
    did = Identity.load(signed[1]).did
    blocks = _blocks(_lines(run_copy))
    _write(run_copy, [{k: v for k, v in b.items() if k != "signature"} for b in blocks])
    verdict = L.check(run_copy / "ledger")
    assert verdict.signer is None and verdict.describe().endswith("unsigned (no block is signed)")
    with pytest.raises(L.LedgerError, match=rf"^signed by nobody \(unsigned\), not by the expected {did}"):
        L.check(run_copy, expect_signer=did)
    with pytest.raises(L.LedgerError, match=r"summary.json: ledger.signer is 'did:key:"):
        L.check(run_copy)  # the run's summary names who signed it


@pytest.mark.parametrize("signature, message", [
    ({"signer": "did:key:zNope", "ed25519": "00" * 64}, "block 1: signature: 'did:key:zNope' does not name an Ed25519"),
    ({"signer": "did:key:z6Mk", "ed25519": "zz"}, "block 1: signature must be an object with a signer"),
    ("deadbeef", "block 1: signature must be an object with a signer"),
])
def test_malformed_signatures_name_their_block(run_copy, signature, message):
    blocks = _blocks(_lines(run_copy))
    blocks[0]["signature"] = signature
    _write(run_copy, blocks)
    with pytest.raises(L.LedgerError, match=f"^{message}"):
        L.check(run_copy)


def test_a_signed_ledger_reopens_only_with_its_key(signed, run_copy):
    key = Identity.load(signed[1])
    for wrong in (None, Identity.generate()):
        with pytest.raises(L.LedgerError, match=r"its blocks are signed by did:key:.*; appending to it needs that key"):
            L.Ledger(run_copy / "ledger", signer=wrong)
    assert L.check(run_copy).closed  # a refused reopen leaves the ledger as its writer closed it
    ledger = L.Ledger(run_copy / "ledger", signer=key)
    ledger.append(24, "t", {"grid": {"upstream_wh": 0, "losses_wh": 0}})
    ledger.close()
    assert L.check(run_copy / "ledger", expect_signer=key.did).head.height == 25


def test_the_format1_ledger_verifies_as_unsigned_and_fails_a_pinned_signer(tmp_path):
    shutil.copytree(FORMAT1, tmp_path / "run")
    verdict = L.check(tmp_path / "run")
    assert (verdict.head.height, verdict.signer, verdict.prefix) == (24, None, False)
    res = cli("ledger", "verify", str(tmp_path / "run"))
    assert res.returncode == 0 and res.stdout == (f"valid: height 24, state root {verdict.head.state_root}, "
                                                  "unsigned (no block is signed)\n")
    did = Identity.generate().did
    res = cli("ledger", "verify", str(tmp_path / "run"), "--expect-signer", did)
    assert (res.returncode, res.stderr) == (1, f"plurigrid: invalid: signed by nobody (unsigned), not by the expected {did}\n")


def test_where_the_run_key_comes_from(tmp_path, monkeypatch):
    monkeypatch.delenv(SIGNER_KEY_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    own = run_signer()  # the user's own key, created on first use
    path = tmp_path / "config" / "plurigrid" / "signer.key"
    assert path.stat().st_mode & 0o777 == 0o600 and run_signer().did == own.did
    monkeypatch.setenv(SIGNER_KEY_ENV, str(tmp_path / "env.key"))
    assert run_signer().did != own.did == run_signer(path).did  # the option beats the env, the env the default
    (tmp_path / "short.key").write_bytes(b"short")
    with pytest.raises(plurigrid.PlurigridError, match=r"short.key: expected a 32-byte Ed25519 seed, found 5 bytes$"):
        plurigrid.load("hello", hours=1).run(out=tmp_path / "r", signer_key=tmp_path / "short.key")


def test_processes_creating_one_key_at_once_all_get_the_key_that_landed(tmp_path):
    path = tmp_path / "signer.key"
    read, write = os.pipe()
    children = []
    for _ in range(6):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.write(write, Identity.load_or_create(path).did.encode() + b"\n")
                code = 0
            finally:
                os._exit(code)
        children.append(pid)
    os.close(write)
    assert all(os.waitpid(pid, 0)[1] == 0 for pid in children)
    with os.fdopen(read, "rb") as f:
        dids = f.read().decode().split()
    assert len(dids) == 6 and set(dids) == {Identity.load(path).did}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signer.key"]


def test_signatures_leave_the_state_alone(run_copy):
    """The state holds no signature: its `blocks/<h>` records are the headers without roots, as before signing."""
    db = sqlite3.connect(run_copy / "ledger" / L.STATE)
    state = db.execute("SELECT state FROM checkpoints").fetchone()[0]
    db.close()
    assert b"ed25519" not in state and b"did:key" not in state
