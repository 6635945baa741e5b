"""The settlement ledger: one block per settlement interval, balances in the Merkle-committed store.

Why: a participant, an auditor or another grid must be able to check what was settled holding only a
state root. Each block is a header (height, interval, time, previous block hash, state root, hash of
the entries) plus its entries: orders, trades, settlements and metered energy, in integer Wh and
integer micro-units of the currency. Applying the entries moves account balances in the versioned
store (`store.Store`, one version per block), so the header's state root commits to every balance,
and `accounts/<id>` can be proven with ICS-23 (JMT spec) to anyone holding the root.

On disk (a run folder's `ledger/`):
- `blocks.jsonl`: one canonical-JSON block per line, readable by anyone;
- `state.sqlite`: the versioned store; its side space keeps the head block hash.

A block line is appended (and fsynced) before the store commit that makes it count; a crash between
the two leaves one extra line, which reopening drops, so the store is what decides what committed.
`verify` replays every block from nothing and checks hashes, roots and conservation, so altering
any byte of either file is found.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plurigrid.state.store import Commit, Store, StoreError

OPERATOR = "grid-operator"  # the account on the other side of every tariff and market payment
GENESIS_HASH = "00" * 32
BLOCKS, STATE = "blocks.jsonl", "state.sqlite"
_TABLES = {  # entry kind → its columns; every value is an integer except `side` and the account columns
    "orders": ("participant", "side", "wh", "limit_micro_per_kwh"),
    "trades": ("buyer", "seller", "wh", "price_micro_per_kwh"),
    "settlements": ("participant", "traded_wh", "market_micro", "tariff_micro", "fee_micro", "bill_micro"),
    "meters": ("participant", "wh"),
    # late meter readings of earlier intervals settled without the participant's decision (lattice
    # nodes that were offline): the energy beyond what that interval settled, at its tariff, once each
    "readings": ("participant", "interval", "wh", "bill_micro", "op"),
}
_ACCOUNT_COLUMNS = {"participant", "buyer", "seller"}


class LedgerError(ValueError):
    """A ledger that does not verify, or entries that break its rules; the message names the block."""


def canonical(value: Any) -> bytes:
    """The one byte encoding that is hashed: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Header:
    height: int
    interval: int
    time: str
    prev_hash: str
    state_root: str
    entries_hash: str

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @property
    def hash(self) -> str:
        return sha256_hex(canonical(self.to_json()))


def account_key(account: str) -> bytes:
    return f"accounts/{account}".encode()


def block_key(height: int) -> bytes:
    return f"blocks/{height:012d}".encode()


def reading_key(account: str, interval: int) -> bytes:
    return f"readings/{account}/{interval:012d}".encode()


def _ints(column: list, where: str) -> list[int]:
    if not all(type(v) is int for v in column):
        raise LedgerError(f"{where}: values must be integers")
    return column


def _table(entries: dict, kind: str, accounts: list[str], where: str) -> dict[str, list]:
    """Checks one entry table's shape and account references; returns it (empty if absent)."""
    table = entries.get(kind, {})
    columns = _TABLES[kind]
    if table == {}:
        return {c: [] for c in columns}
    if not isinstance(table, dict) or sorted(table) != sorted(columns):
        raise LedgerError(f"{where}: {kind} must have the columns {', '.join(columns)}")
    lengths = {len(table[c]) for c in columns if isinstance(table[c], list)}
    if len(lengths) != 1 or not all(isinstance(table[c], list) for c in columns):
        raise LedgerError(f"{where}: {kind} columns must be lists of one length")
    for c in columns:
        if c == "side":
            if any(v not in ("buy", "sell") for v in table[c]):
                raise LedgerError(f"{where}: {kind}.side must be 'buy' or 'sell'")
        elif c == "op":
            if not all(isinstance(v, str) and len(v) == 64 and set(v) <= set("0123456789abcdef") for v in table[c]):
                raise LedgerError(f"{where}: {kind}.op must be operation ids (64 lowercase hex digits)")
        elif c == "limit_micro_per_kwh":  # a strategy may bid without a limit (null)
            _ints([v for v in table[c] if v is not None], f"{where}: {kind}.{c}")
        else:
            _ints(table[c], f"{where}: {kind}.{c}")
        if c in _ACCOUNT_COLUMNS and any(not 0 <= v < len(accounts) for v in table[c]):
            raise LedgerError(f"{where}: {kind}.{c} refers to an account the ledger has not opened")
    return table


def _account(tx, account: str) -> dict:
    raw = tx.get(account_key(account))
    if raw is None:
        return {"balance_micro": 0, "imported_wh": 0, "exported_wh": 0, "height": 0, "bill_micro": 0, "metered_wh": 0}
    return json.loads(raw)


def apply_block(tx, header: Header, entries: dict, accounts: list[str]) -> None:
    """Applies one block's entries to the state (the one rule both writing and verifying use).

    Opens the block's new accounts (appended to `accounts`), checks conservation (metered energy
    plus losses equals upstream energy; each bill is its market, tariff and fee parts; the operator
    receives what participants pay) and moves balances, then records the block in the state.
    """
    where = f"block {header.height}"
    if not isinstance(entries, dict) or set(entries) - set(_TABLES) - {"accounts", "grid"}:
        raise LedgerError(f"{where}: entries must hold only accounts, grid, {', '.join(_TABLES)}")
    new = entries.get("accounts", [])
    if not isinstance(new, list) or not all(isinstance(a, str) and a for a in new):
        raise LedgerError(f"{where}: accounts must be a list of names")
    if len(set(new)) != len(new) or set(new) & (set(accounts) | {OPERATOR}):
        raise LedgerError(f"{where}: accounts opens a name twice (or the reserved {OPERATOR!r})")
    accounts.extend(new)
    tables = {kind: _table(entries, kind, accounts, where) for kind in _TABLES}
    grid = entries.get("grid", {"upstream_wh": 0, "losses_wh": 0})
    if not isinstance(grid, dict) or sorted(grid) != ["losses_wh", "upstream_wh"]:
        raise LedgerError(f"{where}: grid must have upstream_wh and losses_wh")
    _ints(list(grid.values()), f"{where}: grid")
    meters, settle = tables["meters"], tables["settlements"]
    if sum(meters["wh"]) + grid["losses_wh"] != grid["upstream_wh"]:
        raise LedgerError(f"{where}: energy does not balance: metered {sum(meters['wh'])} Wh + losses "
                          f"{grid['losses_wh']} Wh != upstream {grid['upstream_wh']} Wh")
    parts = zip(settle["market_micro"], settle["tariff_micro"], settle["fee_micro"], settle["bill_micro"])
    if any(m + t + f != b for m, t, f, b in parts):
        raise LedgerError(f"{where}: a bill is not the sum of its market, tariff and fee parts")
    if len(set(meters["participant"])) != len(meters["participant"]) or \
            len(set(settle["participant"])) != len(settle["participant"]):
        raise LedgerError(f"{where}: a participant is metered or settled twice")
    changes: dict[str, tuple[int, int]] = {}  # account → (bill, metered Wh) in this block
    for p, wh in zip(meters["participant"], meters["wh"]):
        changes[accounts[p]] = (0, wh)
    for p, bill in zip(settle["participant"], settle["bill_micro"]):
        changes[accounts[p]] = (bill, changes.get(accounts[p], (0, 0))[1])
    readings = tables["readings"]
    for p, interval, wh, bill, op in zip(*(readings[c] for c in _TABLES["readings"])):
        key = reading_key(accounts[p], interval)
        if tx.get(key) is not None or not 0 <= interval < header.interval:
            raise LedgerError(f"{where}: the reading of {accounts[p]} for interval {interval} is settled twice "
                              "or is not of an earlier interval")
        tx.set(key, op.encode())
        before = changes.get(accounts[p], (0, 0))
        changes[accounts[p]] = (before[0] + bill, before[1] + wh)
    # the operator takes the other side of every payment and supplies every metered Wh (readings included)
    changes[OPERATOR] = (-sum(settle["bill_micro"]) - sum(readings["bill_micro"]), grid["upstream_wh"] + sum(readings["wh"]))
    for account in sorted(changes):
        bill, wh = changes[account]
        if not bill and not wh and account != OPERATOR:
            continue
        state = _account(tx, account)
        state.update(balance_micro=state["balance_micro"] - bill, imported_wh=state["imported_wh"] + max(wh, 0),
                     exported_wh=state["exported_wh"] + max(-wh, 0), height=header.height, bill_micro=bill,
                     metered_wh=wh)
        tx.set(account_key(account), canonical(state))
    tx.set(block_key(header.height), canonical({k: v for k, v in header.to_json().items() if k != "state_root"}))


class Ledger:
    """An open ledger folder: appends blocks and commits them to its store."""

    def __init__(self, folder: Path | str, *, create: bool = False, durable: bool = True) -> None:
        """`durable=False`: blocks and commits are not fsynced, for a ledger rebuilt from elsewhere after a
        restart (a lattice node's, from the replicated log); a crash still leaves a consistent prefix."""
        self.folder = Path(folder)
        self.durable = durable
        blocks = self.folder / BLOCKS
        if create:
            self.folder.mkdir(parents=True, exist_ok=True)
            for name in (BLOCKS, STATE, STATE + "-wal", STATE + "-shm"):
                (self.folder / name).unlink(missing_ok=True)
        elif not blocks.is_file() or not (self.folder / STATE).is_file():
            raise LedgerError(f"{self.folder}: no ledger here (expected {BLOCKS} and {STATE})")
        self.store = Store(self.folder / STATE, durable)
        self.accounts: list[str] = []
        self.head = Header(0, -1, "", GENESIS_HASH, "", "")
        self._recover(blocks)

    def _recover(self, blocks: Path) -> None:
        """Reads the committed blocks' accounts and head; drops a line written by a commit that never finished."""
        height = self.store.version
        lines = blocks.read_bytes().splitlines(keepends=True) if blocks.exists() else []
        if len(lines) < height:
            raise LedgerError(f"{blocks}: {len(lines)} blocks but the store committed {height}")
        if len(lines) > height:
            with blocks.open("r+b") as f:
                f.truncate(sum(len(line) for line in lines[:height]))
        for line in lines[:height]:
            block = json.loads(line)
            self.accounts.extend(block["entries"].get("accounts", []))
        if height:
            self.head = Header(**json.loads(lines[height - 1])["header"])

    @property
    def height(self) -> int:
        return self.store.version

    def append(self, interval: int, time: str, entries: dict) -> Header:
        """Adds the block for one settlement interval; returns its header once committed."""
        height = self.height + 1
        provisional = Header(height, interval, time, self.head.hash if height > 1 else GENESIS_HASH, "",
                             sha256_hex(canonical(entries)))
        accounts = list(self.accounts)
        tx = self.store.begin()
        apply_block(tx, provisional, entries, accounts)
        committed: list[Header] = []

        def write_block(commit: Commit) -> None:
            header = Header(**{**provisional.to_json(), "state_root": commit.root.hex()})
            with (self.folder / BLOCKS).open("ab") as f:
                f.write(canonical({"header": header.to_json(), "entries": entries}) + b"\n")
                f.flush()
                if self.durable:
                    os.fsync(f.fileno())
            committed.append(header)

        self.store.commit(tx, before_commit=write_block)
        self.accounts, self.head = accounts, committed[0]
        return self.head

    def close(self) -> None:
        self.store.close()


# ---------------------------------------------------------------- reading a ledger folder


def _open_store(folder: Path) -> Store:
    if not (folder / BLOCKS).is_file() or not (folder / STATE).is_file():
        raise LedgerError(f"{folder}: no ledger here (expected {BLOCKS} and {STATE})")
    try:
        return Store(folder / STATE)
    except StoreError as err:
        raise LedgerError(f"{folder / STATE}: unreadable ({err})") from None


def ledger_folder(run_dir: Path | str) -> Path:
    """The ledger folder of a run folder (or the ledger folder itself)."""
    run_dir = Path(run_dir)
    return run_dir / "ledger" if (run_dir / "ledger").is_dir() else run_dir


def _parse_block(line: bytes, height: int) -> tuple[Header, dict]:
    where = f"block {height}"
    try:
        block = json.loads(line)
        header = Header(**block["header"])
        entries = block["entries"]
    except (ValueError, KeyError, TypeError):
        raise LedgerError(f"{where}: not a block (expected JSON with a header and entries)") from None
    if canonical(block) + b"\n" != line:
        raise LedgerError(f"{where}: not in canonical form (bytes were altered)")
    return header, entries


def _table_digest(db, sql: str) -> str:
    digest = hashlib.sha256()
    for row in db.execute(sql):
        digest.update(canonical([r.hex() if isinstance(r, bytes) else r for r in row]))
    return digest.hexdigest()


def verify(run_dir: Path | str) -> Header:
    """Replays every block from nothing and checks it; returns the head header or raises LedgerError.

    Checks, per block: canonical bytes, height, the previous block's hash, the entries' hash, the
    ledger's rules (conservation, account references) and the state root, both as replayed and as
    `state.sqlite` holds it; then that `state.sqlite` holds exactly the replayed tree and values.
    """
    folder = ledger_folder(run_dir)
    store = _open_store(folder)
    try:
        lines = (folder / BLOCKS).read_bytes().splitlines(keepends=True)
        replay = Store(":memory:")
        accounts: list[str] = []
        head = Header(0, -1, "", GENESIS_HASH, "", "")
        for height, line in enumerate(lines, start=1):
            header, entries = _parse_block(line, height)
            where = f"block {height}"
            if header.height != height:
                raise LedgerError(f"{where}: header says height {header.height}")
            if header.prev_hash != (head.hash if height > 1 else GENESIS_HASH):
                raise LedgerError(f"{where}: prev_hash does not match block {height - 1}")
            if header.entries_hash != sha256_hex(canonical(entries)):
                raise LedgerError(f"{where}: entries do not match the header's entries_hash")
            tx = replay.begin()
            apply_block(tx, header, entries, accounts)
            root = replay.commit(tx).root.hex()
            if root != header.state_root:
                raise LedgerError(f"{where}: state root {header.state_root} differs from the replayed {root}")
            if height > store.version:
                raise LedgerError(f"{where}: state.sqlite never committed it (it holds {store.version} blocks)")
            if height >= store.oldest and store.root(height).hex() != root:
                raise LedgerError(f"{where}: state.sqlite holds root {store.root(height).hex()}, not {root}")
            head = header
        if store.version > len(lines):
            raise LedgerError(f"block {len(lines) + 1}: missing from {BLOCKS} (state.sqlite committed {store.version})")
        if store.oldest == 0:
            for table in ("nodes ORDER BY version, path", "kv ORDER BY space, key, version", "versions ORDER BY version"):
                sql = f"SELECT * FROM {table}"
                if _table_digest(store._db, sql) != _table_digest(replay._db, sql):
                    raise LedgerError(f"state.sqlite: its {table.split()[0]} differ from the replayed blocks")
        return head
    except StoreError as err:
        raise LedgerError(f"{folder / STATE}: {err}") from None
    finally:
        store.close()


def prove(run_dir: Path | str, key: str, height: int | None = None) -> dict[str, str]:
    """An ICS-23 vector (JMT spec) for `key` at `height` (default: the head): key, value, proof, root in hex.

    The value is empty when the key is absent; the proof then shows its absence.
    """
    from plurigrid.state.ics23 import encode_commitment_proof

    folder = ledger_folder(run_dir)
    store = _open_store(folder)
    try:
        height = store.version if height is None else height
        if not max(store.oldest, 1) <= height <= store.version:
            raise LedgerError(f"--height: the ledger holds heights {max(store.oldest, 1)}..{store.version}, not {height}")
        snap = store.snapshot(height)
        raw = key.encode()
        proof = snap.prove(raw)
        value = snap.get(raw) or b""
        return {"key": raw.hex(), "value": value.hex(), "proof": encode_commitment_proof(proof).hex(),
                "root": snap.root.hex()}
    except StoreError as err:
        raise LedgerError(f"{folder / STATE}: {err}") from None
    finally:
        store.close()


def balances(run_dir: Path | str) -> tuple[int, dict[str, dict]]:
    """The head height and every account's state (balance, energy, its last block's bill and meter)."""
    folder = ledger_folder(run_dir)
    store = _open_store(folder)
    try:
        snap = store.snapshot()
        prefix = b"accounts/"
        return store.version, {k[len(prefix):].decode(): json.loads(v) for k, v in snap.items(prefix)}
    finally:
        store.close()


def history(run_dir: Path | str, account: str) -> list[dict]:
    """Per block: the account's metered Wh and bill parts (micro-units), from the committed blocks.

    Readings of earlier intervals settled in a block are included in its metered Wh and bill (and
    shown as `readings_wh`), so the bills add up to the balance.
    """
    folder = ledger_folder(run_dir)
    store = _open_store(folder)
    height = store.version
    store.close()
    accounts: list[str] = []
    rows = []
    with (folder / BLOCKS).open("rb") as f:
        for number, line in zip(range(1, height + 1), f):
            header, entries = _parse_block(line, number)
            accounts.extend(entries.get("accounts", []))
            if account not in accounts and account != OPERATOR:
                continue
            row = {"height": header.height, "time": header.time, "metered_wh": 0, "bill_micro": 0}
            readings = entries.get("readings", {})
            if account == OPERATOR:
                grid = entries.get("grid", {})
                row.update(metered_wh=grid.get("upstream_wh", 0) + sum(readings.get("wh", [])),
                           bill_micro=-sum(entries.get("settlements", {}).get("bill_micro", []))
                           - sum(readings.get("bill_micro", [])))
            else:
                index = accounts.index(account)
                meters, settle = entries.get("meters", {}), entries.get("settlements", {})
                for p, wh in zip(meters.get("participant", []), meters.get("wh", [])):
                    if p == index:
                        row["metered_wh"] = wh
                for i, p in enumerate(settle.get("participant", [])):
                    if p == index:
                        row.update({c: settle[c][i] for c in _TABLES["settlements"][1:]})
                for p, wh, bill in zip(readings.get("participant", []), readings.get("wh", []),
                                       readings.get("bill_micro", [])):
                    if p == index:  # a late reading of an earlier interval, settled in this block
                        row.update(metered_wh=row["metered_wh"] + wh, bill_micro=row["bill_micro"] + bill,
                                   readings_wh=row.get("readings_wh", 0) + wh)
            rows.append(row)
    if not rows and account not in accounts:
        raise LedgerError(f"--participant: no account {account!r} in this ledger")
    return rows
