"""Mutual credit in the ledger: credit is conserved, limits hold, balances are provable, tampering is found."""

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plurigrid.errors import UsageError
from plurigrid.state import ledger as L
from plurigrid.state.ics23 import JMT_SPEC, decode_commitment_proof, verify_membership
from plurigrid.state.mutual_credit import MutualCredit

MEMBERS = ("ann", "bob", "cyd", "dee")


def _circle(folder: Path, limits: dict[str, int]) -> tuple[L.Ledger, MutualCredit]:
    ledger = L.Ledger(folder / "ledger", create=True)
    ledger.append(0, "t0", {"accounts": ["ann", "bob"], "meters": {"participant": [0, 1], "wh": [300, -100]},
                            "grid": {"upstream_wh": 210, "losses_wh": 10}})
    credit = MutualCredit(ledger)
    credit.set_limits(limits, 0, "t0")
    return ledger, credit


@settings(max_examples=60, deadline=None)
@given(limits=st.lists(st.integers(0, 1_000), min_size=4, max_size=4),
       loans=st.lists(st.tuples(st.sampled_from(MEMBERS), st.sampled_from(MEMBERS), st.integers(1, 600)), max_size=12))
def test_credit_is_conserved_and_limits_hold(limits, loans):
    limit = dict(zip(MEMBERS, limits))
    expected = dict.fromkeys(MEMBERS, 0)
    with tempfile.TemporaryDirectory() as tmp:
        ledger, credit = _circle(Path(tmp), limit)
        for k, (lender, borrower, wh) in enumerate(loans, start=1):
            if lender == borrower:
                with pytest.raises(L.LedgerError, match="must lend a positive Wh to another member"):
                    credit.lend(lender, borrower, wh, k, f"t{k}")
            elif expected[borrower] - wh < -limit[borrower]:
                with pytest.raises(L.CreditLimitError, match=rf"credit: {borrower} would owe {wh - expected[borrower]} Wh"):
                    credit.lend(lender, borrower, wh, k, f"t{k}")
            else:
                credit.lend(lender, borrower, wh, k, f"t{k}")
                expected[lender] += wh
                expected[borrower] -= wh
            balances = credit.balances()
            assert balances == expected and sum(balances.values()) == 0
        assert credit.limits() == limit
        ledger.close()
        assert L.check(tmp).head == ledger.head  # every loan replays to the same roots


def test_a_loan_past_the_limit_is_refused_and_writes_nothing(tmp_path):
    ledger, credit = _circle(tmp_path, {"ann": 1_000, "bob": 500})
    credit.lend("ann", "bob", 400, 1, "t1")
    blocks = (tmp_path / "ledger" / L.BLOCKS).read_bytes()
    head = ledger.head
    with pytest.raises(L.CreditLimitError, match=r"^block 4: credit: bob would owe 510 Wh, past its credit limit of 500 Wh$"):
        credit.book_trades([("bob", "ann", 150), ("ann", "bob", 40)], 2, "t2")  # the block's net: 400 + 150 - 40
    with pytest.raises(L.CreditLimitError, match=r"^block 4: credit: bob would owe 400 Wh, past its credit limit of 300 Wh$"):
        credit.set_limits({"bob": 300}, 2, "t2")  # a limit below what a member already owes
    assert ledger.head == head and credit.balances() == {"ann": 400, "bob": -400}
    assert (tmp_path / "ledger" / L.BLOCKS).read_bytes() == blocks
    ledger.close()
    assert L.verify(tmp_path) == head


def test_book_trades_lends_each_sellers_energy_to_its_buyer_in_one_block(tmp_path):
    ledger, credit = _circle(tmp_path, {"ann": 1_000, "bob": 500, "cyd": 200})
    head = credit.book_trades([("bob", "ann", 300), ("cyd", "ann", 150), ("ann", "bob", 100), ("cyd", "bob", 0)], 1, "t1")
    assert credit.balances() == {"ann": 350, "bob": -200, "cyd": -150}
    block = json.loads((tmp_path / "ledger" / L.BLOCKS).read_bytes().splitlines()[-1])
    assert block["entries"] == {"credit_transfers": {"lender": [0, 0, 1], "borrower": [1, 2, 0], "wh": [300, 150, 100]}}
    assert head.height == ledger.height == 3
    ledger.close()


def test_a_members_credit_balance_is_proven_against_the_blocks_root(tmp_path):
    ledger, credit = _circle(tmp_path, {"ann": 1_000, "bob": 500})
    first = credit.lend("ann", "bob", 400, 1, "t1")
    credit.lend("bob", "ann", 100, 2, "t2")
    ledger.close()
    key = L.credit_key("bob")
    for header, balance in ((first, -400), (L.verify(tmp_path), -300)):
        vector = L.prove(tmp_path, key.decode(), header.height)
        root, value = bytes.fromhex(vector["root"]), bytes.fromhex(vector["value"])
        assert root.hex() == header.state_root
        assert json.loads(value) == {"balance_wh": balance, "limit_wh": 500}
        proof = decode_commitment_proof(bytes.fromhex(vector["proof"]))
        assert verify_membership(JMT_SPEC, root, proof, key, value)
        assert not verify_membership(JMT_SPEC, root, proof, key, value.replace(b"-", b"+"))


def _rewrite_last_block(folder: Path, change) -> int:
    """Rewrites the last block's entries and recomputes its hashes (as a forger without state.sqlite would)."""
    path = folder / "ledger" / L.BLOCKS
    lines = path.read_bytes().splitlines(keepends=True)
    block = json.loads(lines[-1])
    change(block["entries"])
    header = L.Header(**{**block["header"], "entries_hash": L.sha256_hex(L.canonical(block["entries"]))})
    lines[-1] = L.block_line(header, L.canonical(block["entries"]))
    path.write_bytes(b"".join(lines))
    return len(lines)


def test_check_finds_a_tampered_credit_entry(tmp_path):
    ledger, credit = _circle(tmp_path, {"ann": 1_000, "bob": 500})
    credit.lend("ann", "bob", 400, 1, "t1")
    ledger.close()
    path = tmp_path / "ledger" / L.BLOCKS
    original = path.read_bytes()
    path.write_bytes(original.replace(b'"wh":[400]', b'"wh":[500]'))
    with pytest.raises(L.LedgerError, match=r"^block 3: entries do not match the header's entries_hash"):
        L.check(tmp_path)
    path.write_bytes(original)
    height = _rewrite_last_block(tmp_path, lambda e: e["credit_transfers"].update(wh=[501]))
    with pytest.raises(L.CreditLimitError, match=rf"^block {height}: credit: bob would owe 501 Wh"):
        L.check(tmp_path)
    path.write_bytes(original)
    height = _rewrite_last_block(tmp_path, lambda e: e["credit_transfers"].update(wh=[450]))
    with pytest.raises(L.LedgerError, match=rf"^block {height}: state root .* differs from the replayed"):
        L.check(tmp_path)


def test_credit_survives_reopening_from_a_checkpoint(tmp_path):
    ledger, credit = _circle(tmp_path, {"ann": 1_000, "bob": 500})
    credit.lend("ann", "bob", 400, 1, "t1")
    ledger.close()
    again = L.Ledger(tmp_path / "ledger")
    credit = MutualCredit(again)
    assert credit.balances() == {"ann": 400, "bob": -400}
    with pytest.raises(L.CreditLimitError, match="bob would owe 600 Wh"):
        credit.lend("ann", "bob", 200, 2, "t2")  # the limit counts what was owed before the reopen
    again.close()


@pytest.mark.parametrize("call, error, message", [
    (lambda c: c.lend("ann", "eve", 10, 1, "t1"), L.LedgerError, r"^lend: 'eve' is not a credit member"),
    (lambda c: c.lend("ann", "bob", 0, 1, "t1"), UsageError, r"^lend: wh: 0; expected an integer number of Wh >= 1$"),
    (lambda c: c.lend("ann", "bob", 1.5, 1, "t1"), UsageError, r"^lend: wh: 1.5; expected an integer"),
    (lambda c: c.set_limits({"ann": -1}, 1, "t1"), UsageError, r"^limits_wh\['ann'\]: -1; expected an integer number"),
    (lambda c: c.set_limits({"grid-operator": 5}, 1, "t1"), L.LedgerError, r"^block 3: accounts opens a name twice"),
    (lambda c: c.book_trades([("ann", "bob", 0)], 1, "t1"), UsageError, r"^trades: no energy traded"),
])
def test_bad_credit_calls_are_one_line_errors(tmp_path, call, error, message):
    ledger, credit = _circle(tmp_path, {"ann": 1_000, "bob": 500})
    with pytest.raises(error, match=message):
        call(credit)
    assert ledger.height == 2
    ledger.close()


def test_an_account_without_a_limit_cannot_borrow(tmp_path):
    ledger, credit = _circle(tmp_path, {"ann": 1_000})
    with pytest.raises(L.LedgerError, match=r"^block 3: credit_transfers: bob is not a credit member"):
        credit.lend("ann", "bob", 10, 1, "t1")
    ledger.close()


def test_ledgers_without_credit_keep_their_roots(tmp_path):
    """A block of accounts, meters and settlements has the root it had before credit entries existed."""
    ledger = L.Ledger(tmp_path / "ledger", create=True)
    ledger.append(0, "t0", {"accounts": ["a", "b", "c"]})
    ledger.append(1, "t1", {"meters": {"participant": [0, 1, 2], "wh": [500, -200, 100]},
                            "grid": {"upstream_wh": 420, "losses_wh": 20},
                            "settlements": {"participant": [0, 1], "traded_wh": [0, 0], "market_micro": [10, -5],
                                            "tariff_micro": [3, 0], "fee_micro": [1, 0], "bill_micro": [14, -5]}})
    assert ledger.head.state_root == "1e4b80ee91e4a296fec716c63f8783edaea802567bd354f4b8126efcdc2811e1"
    assert ledger.head.prev_hash == "d987470d6ce1f040969d93a246e01d1862f022cf700ff54920aa770de52936a6"
    ledger.close()
