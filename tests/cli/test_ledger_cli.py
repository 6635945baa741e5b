"""`plurigrid ledger verify|prove|show` and `plurigrid ics23 verify`: the contract a third party relies on."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.cli.test_cli import plurigrid

SPEC_OF_FOLDER = {"iavl": "iavl", "tendermint": "tendermint"}


@pytest.fixture(scope="module")
def hello_run(tmp_path_factory) -> tuple[Path, dict]:
    run = tmp_path_factory.mktemp("cli") / "run"
    res = plurigrid("run", "hello", "--json", "--out", str(run))
    assert res.returncode == 0, res.stderr
    return run, json.loads(res.stdout)


def test_run_writes_a_ledger_that_verifies(hello_run):
    run, summary = hello_run
    assert summary["ledger"]["height"] == summary["steps"]
    res = plurigrid("ledger", "verify", str(run))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == (f"valid: height {summary['steps']}, state root {summary['ledger']['state_root']}, "
                                  f"signed by {summary['ledger']['signer']}")


def test_tampered_block_fails_with_one_line(hello_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(hello_run[0], run)
    blocks = run / "ledger" / "blocks.jsonl"
    lines = blocks.read_bytes().splitlines(keepends=True)
    lines[6] = lines[6].replace(b'"wh":[', b'"wh":[1', 1)
    blocks.write_bytes(b"".join(lines))
    res = plurigrid("ledger", "verify", str(run))
    assert res.returncode == 1
    assert res.stderr == "plurigrid: invalid: block 7: entries do not match the header's entries_hash\n"


def test_prove_then_ics23_verify_round_trips(hello_run, tmp_path):
    run, summary = hello_run
    settlements = pd.read_parquet(run / "settlements.parquet")
    payer = settlements.sort_values("bill_micro").iloc[-1]
    vector = tmp_path / "proof.json"
    res = plurigrid("ledger", "prove", str(run), f"accounts/{payer.participant}", "--out", str(vector))
    assert res.returncode == 0, res.stderr
    v = json.loads(vector.read_text())
    assert v["root"] == summary["ledger"]["state_root"]
    assert json.loads(bytes.fromhex(v["value"]))["balance_micro"] == -int(payer.bill_micro)
    ok = plurigrid("ics23", "verify", str(vector), "--spec", "jmt")
    assert (ok.returncode, ok.stdout) == (0, "valid\n")
    forged = dict(v, value=json.dumps({**json.loads(bytes.fromhex(v["value"])), "balance_micro": 0}).encode().hex())
    vector.write_text(json.dumps(forged))
    bad = plurigrid("ics23", "verify", str(vector), "--spec", "jmt")
    assert bad.returncode == 1
    assert bad.stderr == "plurigrid: invalid: provided value doesn't match proof\n"


def test_absence_proof_at_an_earlier_height(hello_run, tmp_path):
    run, _ = hello_run
    res = plurigrid("ledger", "prove", str(run), "accounts/nobody", "--height", "3")
    assert res.returncode == 0, res.stderr
    v = json.loads(res.stdout)
    assert v["value"] == ""
    vector = tmp_path / "absent.json"
    vector.write_text(res.stdout)
    assert plurigrid("ics23", "verify", str(vector), "--spec", "jmt").stdout == "valid\n"
    wrong_spec = plurigrid("ics23", "verify", str(vector), "--spec", "smt")
    assert wrong_spec.returncode == 1 and wrong_spec.stderr.count("\n") == 1


@pytest.mark.parametrize("folder", sorted(SPEC_OF_FOLDER))
def test_ics23_verify_accepts_every_official_vector(testdata, folder, tmp_path):
    for vector in sorted((testdata / "ics23" / folder).glob("*.json")):
        res = plurigrid("ics23", "verify", str(vector), "--spec", SPEC_OF_FOLDER[folder])
        assert (res.returncode, res.stdout) == (0, "valid\n"), (vector.name, res.stderr)
    flipped = json.loads((testdata / "ics23" / folder / "exist_middle.json").read_text())
    flipped["root"] = ("00" if flipped["root"][:2] != "00" else "11") + flipped["root"][2:]
    (tmp_path / "v.json").write_text(json.dumps(flipped))
    res = plurigrid("ics23", "verify", str(tmp_path / "v.json"), "--spec", SPEC_OF_FOLDER[folder])
    assert res.returncode == 1
    assert res.stderr == "plurigrid: invalid: calculated root doesn't match provided root\n"


def test_show_balances_and_history(hello_run):
    run, summary = hello_run
    res = plurigrid("ledger", "show", str(run), "--json")
    assert res.returncode == 0, res.stderr
    shown = json.loads(res.stdout)
    assert shown["height"] == summary["steps"]
    assert sum(a["balance_micro"] for a in shown["accounts"].values()) == 0
    pid = next(iter(sorted(a for a in shown["accounts"] if a != "grid-operator")))
    res = plurigrid("ledger", "show", str(run), "--participant", pid, "--json")
    history = json.loads(res.stdout)["history"]
    assert len(history) == summary["steps"]
    assert -sum(row["bill_micro"] for row in history) == shown["accounts"][pid]["balance_micro"]
    table = plurigrid("ledger", "show", str(run))
    assert table.returncode == 0 and "grid-operator" in table.stdout


@pytest.mark.parametrize("args, line", [
    (["ics23", "verify", "missing.json", "--spec", "jmt"], "plurigrid: error: missing.json: cannot read (No such file or directory)"),
    (["ics23", "verify", "{run}/summary.json", "--spec", "jmt"], "plurigrid: error: {run}/summary.json: expected a hex string field 'key'"),
    (["ics23", "verify", "{run}/report.html", "--spec", "jmt"], "plurigrid: error: {run}/report.html: not JSON"),
    (["ics23", "verify", "{run}/summary.json", "--spec", "merkle"],
     "plurigrid: error: --spec: unknown spec 'merkle'; expected one of iavl, tendermint, smt, jmt"),
    (["ledger", "verify", "no-such-run"], "plurigrid: error: no-such-run: no such run folder"),
    (["ledger", "verify", "{run}/ledger/.."], None),
    (["ledger", "prove", "{run}", "accounts/x", "--height", "99"],
     "plurigrid: error: --height: the ledger holds heights 1..24, not 99"),
    (["ledger", "show", "{run}", "--participant", "nobody"], "plurigrid: error: --participant: no account 'nobody' in this ledger"),
])
def test_bad_input_gives_one_line_and_exit_2(hello_run, tmp_path, args, line):
    run = hello_run[0]
    res = plurigrid(*[a.format(run=run) for a in args], cwd=tmp_path)
    if line is None:  # a path that leads to the run folder is fine
        assert res.returncode == 0, res.stderr
        return
    assert res.returncode == 2
    assert res.stderr.startswith(line.format(run=run)), res.stderr
    assert res.stderr.count("\n") == 1


def test_folder_without_a_ledger_is_a_user_error(tmp_path):
    res = plurigrid("ledger", "verify", str(tmp_path))
    assert res.returncode == 2
    assert res.stderr == f"plurigrid: error: {tmp_path}: holds no ledger (expected ledger/blocks.jsonl)\n"
