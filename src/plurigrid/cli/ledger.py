"""`plurigrid ledger verify|prove|show` and `plurigrid ics23 verify`: check what a run settled.

Exit codes: 0 valid (or done), 1 the ledger or proof does not verify (one line saying why),
2 a problem with the input itself (missing file, bad flag, not JSON).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from plurigrid.cli import console
from plurigrid.errors import UsageError
from plurigrid.jsonfile import read_json

ledger_app = typer.Typer(add_completion=False, no_args_is_help=True,
                         help="Verify a run's ledger, prove a key against its state root, or show balances.")
ics23_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Check ICS-23 commitment proofs.")
_out = console.out
_err = console.err
INVALID_EXIT = 1
MICRO = 1e-6


def _fail(line: str) -> None:
    _err.print(f"plurigrid: {line}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(INVALID_EXIT)


@ics23_app.command("verify")
def ics23_verify(
    vector: Path = typer.Argument(..., help="JSON with hex key, value (empty: absence), proof and root"),
    spec: str = typer.Option(..., "--spec", help="iavl, tendermint, smt or jmt"),
) -> None:
    """Verify one proof in the official ICS-23 vector format; prints `valid` or why not."""
    from plurigrid.state.ics23 import SPECS, Ics23Error, check_membership, check_non_membership, decode_commitment_proof

    if spec not in SPECS:
        raise UsageError(f"--spec: unknown spec {spec!r}; expected one of {', '.join(SPECS)}")
    data = read_json(vector, UsageError)
    fields = {}
    for name in ("key", "value", "proof", "root"):
        if not isinstance(data, dict) or not isinstance(data.get(name), str):
            raise UsageError(f"{vector}: expected a hex string field {name!r}")
        try:
            fields[name] = bytes.fromhex(data[name])
        except ValueError:
            raise UsageError(f"{vector}: field {name!r} is not hex") from None
    try:
        proof = decode_commitment_proof(fields["proof"])
        if fields["value"]:
            check_membership(SPECS[spec], fields["root"], proof, fields["key"], fields["value"])
        else:
            check_non_membership(SPECS[spec], fields["root"], proof, fields["key"])
    except Ics23Error as err:
        _fail(f"invalid: {err}")
    _out.print("valid", highlight=False)


@ledger_app.command("verify")
def ledger_verify(
    run_dir: Path = typer.Argument(..., help="a run folder (or its ledger/ folder)"),
    expect_signer: str | None = typer.Option(None, "--expect-signer", help="the did:key that must have signed "
                                             "every block (fails on another signer and on unsigned ledgers)"),
) -> None:
    """Replay every block and check hashes, signatures, state roots and conservation; exit 1 naming the first bad block.

    A ledger whose writer stopped before finishing (a killed run) is reported as a valid prefix up to its last
    committed block."""
    from plurigrid.state.identity import IdentityError, public_key_of
    from plurigrid.state.ledger import LedgerError, check

    if expect_signer is not None:
        try:
            public_key_of(expect_signer)
        except IdentityError as err:
            raise UsageError(f"--expect-signer: {err}") from None
    _require_dir(run_dir)
    try:
        verdict = check(run_dir, expect_signer)
    except LedgerError as err:
        _fail(f"invalid: {err}")
    _out.print(verdict.describe(), highlight=False, soft_wrap=True)


@ledger_app.command("prove")
def ledger_prove(
    run_dir: Path = typer.Argument(..., help="a run folder (or its ledger/ folder)"),
    key: str = typer.Argument(..., help="state key, e.g. accounts/<participant> or blocks/000000000001"),
    height: int | None = typer.Option(None, "--height", help="block height (default: the head)"),
    out: Path | None = typer.Option(None, "--out", help="write the vector here instead of stdout"),
) -> None:
    """Write an ICS-23 proof (JMT spec) of KEY, or of its absence, for `plurigrid ics23 verify --spec jmt`."""
    from plurigrid.state.ledger import prove

    _require_dir(run_dir)
    text = json.dumps(prove(run_dir, key, height), indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


@ledger_app.command("show")
def ledger_show(
    run_dir: Path = typer.Argument(..., help="a run folder (or its ledger/ folder)"),
    participant: str | None = typer.Option(None, "--participant", help="show this account's history per block"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """Balances at the head block, or one participant's settlements block by block."""
    from plurigrid.state.ledger import balances, history

    _require_dir(run_dir)
    height, accounts = balances(run_dir)
    if participant is None:
        if as_json:
            sys.stdout.write(json.dumps({"height": height, "accounts": accounts}, indent=2) + "\n")
            return
        table = Table("account", "balance", "imported kWh", "exported kWh", "last block", box=None,
                      title=f"ledger at height {height}")
        for name, a in accounts.items():
            table.add_row(name, f"{a['balance_micro'] * MICRO:,.6f}", f"{a['imported_wh'] / 1000:,.3f}",
                          f"{a['exported_wh'] / 1000:,.3f}", str(a["height"]))
        _out.print(table)
        return
    rows = history(run_dir, participant)
    if as_json:
        sys.stdout.write(json.dumps({"height": height, "account": participant, "state": accounts.get(participant),
                                     "history": rows}, indent=2) + "\n")
        return
    table = Table("height", "time", "metered kWh", "bill", box=None, title=f"{participant} (height {height})")
    for row in rows:
        table.add_row(str(row["height"]), row["time"], f"{row['metered_wh'] / 1000:,.3f}", f"{row['bill_micro'] * MICRO:,.6f}")
    _out.print(table)
    state = accounts.get(participant)
    if state is not None:
        _out.print(f"balance {state['balance_micro'] * MICRO:,.6f}", highlight=False)


def _require_dir(run_dir: Path) -> None:
    from plurigrid.state.ledger import BLOCKS, has_ledger, ledger_folder

    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run folder")
    folder = ledger_folder(run_dir)
    if not has_ledger(folder):
        raise UsageError(f"{run_dir}: holds no ledger (expected ledger/{BLOCKS})")
