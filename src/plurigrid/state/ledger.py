"""The settlement ledger: one block per settlement interval, balances in the Merkle-committed store.

Why: a participant, an auditor or another grid must be able to check what was settled holding only a
state root. Each block is a header (height, interval, time, previous block hash, state root, hash of
the entries) plus its entries: orders, trades, settlements and metered energy, in integer Wh and
integer micro-units of the currency. Applying the entries moves account balances in the versioned
store (`store.Store`, one version per block), so the header's state root commits to every balance,
and `accounts/<id>` can be proven with ICS-23 (JMT spec) to anyone holding the root. Members of a
mutual-credit circle (`mutual_credit`) lend each other energy: `credit_limits` and `credit_transfers`
entries move `credit/<id>` (Wh lent minus Wh borrowed, and the most Wh the member may owe), which sum
to zero and stay within the limits; ledgers without such entries are as before. Beside each
header (outside the state, so roots do not depend on who signs) is the writer's Ed25519 signature
of it and its `did:key`, so a ledger recomputed by someone without the key does not verify as theirs.

On disk (a run folder's `ledger/`):
- `blocks.jsonl` (and, for long runs, zstd segments of it: `blocklog`): one canonical-JSON block
  per line, readable by anyone. The blocks are the record: a block is committed once its whole
  line is in the file (fsynced then, or within the group commit's interval);
- `state.sqlite`: checkpoints of the store (every version's root, the full state at the last
  checkpoint; its side space keeps the account order), written as the blocks grow and at close,
  and whether the ledger's writer has it open. It is derived from the blocks and rebuilt from them.

Reopening a ledger loads the last checkpoint and replays the blocks after it, checking each root and
signature against its header; an unfinished last line (a crash while writing it) is dropped. `check`
replays every block from nothing and checks hashes, signatures, roots and conservation, so altering
any byte of either file is found; a ledger whose writer stopped before closing it verifies as a
prefix up to its last committed block. Ledgers written before store format 2 are read and verified
in place; ledgers written before signing verify as unsigned.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from plurigrid.errors import PlurigridError
from plurigrid.jsonfile import read_json
from plurigrid.state._native import canonical_json, format_rows
from plurigrid.state.blocklog import HEAD, BlockLog, BlockLogError
from plurigrid.state.identity import Identity, IdentityError, public_key_of
from plurigrid.state.identity import verify as verify_signature
from plurigrid.state.store import Commit, Format1Store, Store, StoreError, Transaction, open_store
from plurigrid.untrusted import parse_json

OPERATOR = "grid-operator"  # the account on the other side of every tariff and market payment
GENESIS_HASH = "00" * 32
BLOCKS, STATE = HEAD, "state.sqlite"
_TABLES = {  # entry kind → its columns; every value is an integer except `side` and the account columns
    "orders": ("participant", "side", "wh", "limit_micro_per_kwh"),
    "trades": ("buyer", "seller", "wh", "price_micro_per_kwh"),
    "settlements": ("participant", "traded_wh", "market_micro", "tariff_micro", "fee_micro", "bill_micro"),
    "meters": ("participant", "wh"),
    # late meter readings of earlier intervals settled without the participant's decision (lattice
    # nodes that were offline): the energy beyond what that interval settled, at its tariff, once each
    "readings": ("participant", "interval", "wh", "bill_micro", "op"),
    # mutual credit in energy among members (`mutual_credit`): the most Wh each may owe, then loans of Wh
    "credit_limits": ("member", "limit_wh"),
    "credit_transfers": ("lender", "borrower", "wh"),
    # data policies the participants consented to (microworld/privacy.py): each version's SHA-256, kept for good
    "consents": ("participant", "version", "digest"),
}
_ACCOUNT_COLUMNS = {"participant", "buyer", "seller", "member", "lender", "borrower"}
_ACCOUNT_FIELDS = ("balance_micro", "bill_micro", "exported_wh", "height", "imported_wh", "metered_wh")
_ACCOUNT_PARTS = [b'{"' + _ACCOUNT_FIELDS[0].encode() + b'":'] + [b',"' + f.encode() + b'":' for f in _ACCOUNT_FIELDS[1:]] + [b"}"]
_LIMIT = 1 << 62  # amounts beyond this could overflow the balances' 64-bit sums
_ACCOUNTS_KEY = b"ledger/accounts"  # side space: the accounts in the order blocks opened them
CHECKPOINT_FACTOR = 32  # a checkpoint once the blocks since the last one hold this many times the state
SIGNING_DOMAIN = b"plurigrid/ledger/header/1:"  # what a block signature signs: this, then the header's hash
_OPEN = "ledger_open"  # state.sqlite meta: 1 while a writer has the ledger open, 0 once it closed it
_HEX_SIGNATURE = re.compile(r"^[0-9a-f]{128}$")


class LedgerError(PlurigridError, ValueError):
    """A ledger that does not verify, or entries that break its rules; the message names the block."""


class CreditLimitError(LedgerError):
    """Credit entries that would leave a member owing more Wh than its credit limit."""


def canonical(value: Any) -> bytes:
    """The one byte encoding that is hashed: sorted keys, no spaces, UTF-8 (int64 arrays as lists)."""
    try:
        return canonical_json(value)
    except TypeError:  # floats and other types: the standard encoder, which the native one matches
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


GENESIS = Header(0, -1, "", GENESIS_HASH, "", "")


def account_key(account: str) -> bytes:
    return f"accounts/{account}".encode()


def block_key(height: int) -> bytes:
    return f"blocks/{height:012d}".encode()


def credit_key(member: str) -> bytes:
    return f"credit/{member}".encode()


def reading_key(account: str, interval: int) -> bytes:
    return f"readings/{account}/{interval:012d}".encode()


def consent_key(account: str, version: int) -> bytes:
    return f"consents/{account}/{version:012d}".encode()


def signing_message(header: Header) -> bytes:
    """The bytes a block's signature signs: a domain tag (so no other signed message can pass for it) and its header hash."""
    return SIGNING_DOMAIN + bytes.fromhex(header.hash)


def sign_header(header: Header, signer: Identity) -> dict[str, str]:
    """A block's `signature`: the signer's did:key and its Ed25519 signature of the header (hex)."""
    return {"ed25519": signer.sign(signing_message(header)).hex(), "signer": signer.did}


def block_line(header: Header, entries_json: bytes, signature: dict[str, str] | None = None) -> bytes:
    """A block as its file line: canonical({"entries": ..., "header": ..., "signature": ...}) from the already
    encoded entries (an unsigned block has no `signature`)."""
    line = b'{"entries":' + entries_json + b',"header":' + canonical(header.to_json())
    if signature is not None:
        line += b',"signature":' + canonical(signature)
    return line + b"}\n"


@dataclass(frozen=True)
class Accounts:
    """Every account's state, columnar: position 0 is the grid operator, participant p is position p + 1."""

    names: tuple[str, ...]  # participants in the order blocks opened them
    keys: np.ndarray  # state key (bytes) of each position, operator first
    fields: dict[str, np.ndarray]  # _ACCOUNT_FIELDS → int64 per position

    @classmethod
    def empty(cls) -> Accounts:
        return cls((), np.array([account_key(OPERATOR)], dtype=object), {f: np.zeros(1, dtype=np.int64) for f in _ACCOUNT_FIELDS})

    def opened(self, new: list[str]) -> Accounts:
        grow = {f: np.concatenate([v, np.zeros(len(new), dtype=np.int64)]) for f, v in self.fields.items()}
        keys = np.concatenate([self.keys, np.array([account_key(a) for a in new], dtype=object)])
        return Accounts(self.names + tuple(new), keys, grow)

    @classmethod
    def load(cls, names: list[str], read: Any) -> Accounts:
        """The accounts as the store holds them (`read(key)` gives a value or None)."""
        state = cls.empty().opened(names)
        for pos, key in enumerate(state.keys):
            raw = read(key)
            if raw is not None:
                for field, value in json.loads(raw).items():
                    state.fields[field][pos] = value
        return state


def _column(table: dict, kind: str, column: str, where: str, accounts: int) -> np.ndarray | list:
    """One entry column, checked: int64 values (limits may be null), sides and operation ids as given."""
    values = table[column]
    if column == "side":
        if not set(values) <= {"buy", "sell"}:
            raise LedgerError(f"{where}: {kind}.side must be 'buy' or 'sell'")
        return values
    if column in ("op", "digest"):
        if not all(isinstance(v, str) and len(v) == 64 and set(v) <= set("0123456789abcdef") for v in values):
            raise LedgerError(f"{where}: {kind}.{column} must be SHA-256 digests (64 lowercase hex digits)")
        return values
    if isinstance(values, np.ndarray):
        array = values
        if array.dtype != np.int64 or array.ndim != 1:
            raise LedgerError(f"{where}: {kind}.{column}: values must be integers")
    else:
        if column == "limit_micro_per_kwh":  # a strategy may bid without a limit (null)
            values = [v for v in values if v is not None]
        if not all(type(v) is int for v in values):
            raise LedgerError(f"{where}: {kind}.{column}: values must be integers")
        try:
            array = np.array(values, dtype=np.int64)
        except OverflowError:
            array = np.array([_LIMIT], dtype=np.int64)
    if len(array) and int(np.abs(array).max()) >= _LIMIT:
        raise LedgerError(f"{where}: {kind}.{column}: values must be below 2**62 in size")
    if column in _ACCOUNT_COLUMNS and len(array) and (array.min() < 0 or array.max() >= accounts):
        raise LedgerError(f"{where}: {kind}.{column} refers to an account the ledger has not opened")
    return array


def _table(entries: dict, kind: str, accounts: int, where: str) -> dict[str, Any]:
    """Checks one entry table's shape, types and account references; returns its columns (empty if absent)."""
    table = entries.get(kind, {})
    columns = _TABLES[kind]
    if isinstance(table, dict) and not table:
        return {c: np.zeros(0, dtype=np.int64) if c not in ("side", "op", "digest") else [] for c in columns}
    if not isinstance(table, dict) or sorted(table) != sorted(columns):
        raise LedgerError(f"{where}: {kind} must have the columns {', '.join(columns)}")
    if not all(isinstance(table[c], (list, np.ndarray)) for c in columns) or len({len(table[c]) for c in columns}) != 1:
        raise LedgerError(f"{where}: {kind} columns must be lists of one length")
    return {c: _column(table, kind, c, where, accounts) for c in columns}


def _repeats(participants: np.ndarray, accounts: int) -> bool:
    return len(participants) > 0 and int(np.bincount(participants, minlength=accounts).max()) > 1


def apply_block(accounts: Accounts, tx: Transaction, header: Header, entries: dict) -> Accounts:
    """Applies one block's entries to the state (the one rule both writing and verifying use).

    Opens the block's new accounts, checks conservation (metered energy plus losses equals upstream
    energy; each bill is its market, tariff and fee parts; the operator receives what participants
    pay), moves balances and records the block in the state. Returns the accounts after the block;
    `accounts` itself is left as it was (the caller keeps it if the commit fails).
    """
    where = f"block {header.height}"
    if not isinstance(entries, dict) or set(entries) - set(_TABLES) - {"accounts", "grid"}:
        raise LedgerError(f"{where}: entries must hold only accounts, grid, {', '.join(_TABLES)}")
    new = entries.get("accounts", [])
    if not isinstance(new, list) or not all(isinstance(a, str) and a for a in new):
        raise LedgerError(f"{where}: accounts must be a list of names")
    if new and (len(set(new)) != len(new) or set(new) & (set(accounts.names) | {OPERATOR})):
        raise LedgerError(f"{where}: accounts opens a name twice (or the reserved {OPERATOR!r})")
    if new:
        accounts = accounts.opened(new)
        tx.side_set(_ACCOUNTS_KEY, canonical(list(accounts.names)))
    n = len(accounts.names)
    tables = {kind: _table(entries, kind, n, where) for kind in _TABLES}
    grid = entries.get("grid", {"upstream_wh": 0, "losses_wh": 0})
    if not isinstance(grid, dict) or sorted(grid) != ["losses_wh", "upstream_wh"]:
        raise LedgerError(f"{where}: grid must have upstream_wh and losses_wh")
    if not all(type(v) is int and abs(v) < _LIMIT for v in grid.values()):
        raise LedgerError(f"{where}: grid: values must be integers")
    meters, settle, readings = tables["meters"], tables["settlements"], tables["readings"]
    metered = int(meters["wh"].sum())
    if metered + grid["losses_wh"] != grid["upstream_wh"]:
        raise LedgerError(f"{where}: energy does not balance: metered {metered} Wh + losses "
                          f"{grid['losses_wh']} Wh != upstream {grid['upstream_wh']} Wh")
    if np.any(settle["market_micro"] + settle["tariff_micro"] + settle["fee_micro"] != settle["bill_micro"]):
        raise LedgerError(f"{where}: a bill is not the sum of its market, tariff and fee parts")
    if _repeats(meters["participant"], n) or _repeats(settle["participant"], n):
        raise LedgerError(f"{where}: a participant is metered or settled twice")
    # this block's bill and metered energy per account position (operator at 0)
    bill = np.zeros(n + 1, dtype=np.int64)
    wh = np.zeros(n + 1, dtype=np.int64)
    wh[meters["participant"] + 1] = meters["wh"]
    bill[settle["participant"] + 1] = settle["bill_micro"]
    for p, interval, reading_wh, reading_bill, op in zip(*(readings[c] for c in _TABLES["readings"])):
        name = accounts.names[p]
        key = reading_key(name, int(interval))
        if tx.get(key) is not None or not 0 <= interval < header.interval:
            raise LedgerError(f"{where}: the reading of {name} for interval {interval} is settled twice "
                              "or is not of an earlier interval")
        tx.set(key, op.encode())
        bill[p + 1] += reading_bill
        wh[p + 1] += reading_wh
    # the operator takes the other side of every payment and supplies every metered Wh (readings included)
    bill[0] = -int(settle["bill_micro"].sum()) - int(readings["bill_micro"].sum())
    wh[0] = grid["upstream_wh"] + int(readings["wh"].sum())
    changed = np.flatnonzero((bill != 0) | (wh != 0) | (np.arange(n + 1) == 0))
    fields = {f: v.copy() for f, v in accounts.fields.items()}
    b, w = bill[changed], wh[changed]
    fields["balance_micro"][changed] -= b
    fields["imported_wh"][changed] += np.maximum(w, 0)
    fields["exported_wh"][changed] += np.maximum(-w, 0)
    fields["height"][changed] = header.height
    fields["bill_micro"][changed] = b
    fields["metered_wh"][changed] = w
    if int(np.abs(fields["balance_micro"][changed]).max()) >= _LIMIT:
        raise LedgerError(f"{where}: a balance would exceed 2**62 micro-units")
    values = format_rows(_ACCOUNT_PARTS, [fields[f][changed] for f in _ACCOUNT_FIELDS])
    tx.writes.update(zip(accounts.keys[changed].tolist(), values))
    for p, version, digest in zip(*(tables["consents"][c] for c in _TABLES["consents"])):
        key = consent_key(accounts.names[p], int(version))
        if tx.get(key) is not None or version < 1:
            raise LedgerError(f"{where}: consent version {version} of {accounts.names[p]} is recorded twice or below 1")
        tx.set(key, digest.encode())
    if len(tables["credit_limits"]["member"]) or len(tables["credit_transfers"]["wh"]):
        _apply_credit(accounts.names, tx, tables["credit_limits"], tables["credit_transfers"], where)
    tx.set(block_key(header.height), canonical({k: v for k, v in header.to_json().items() if k != "state_root"}))
    return replace(accounts, fields=fields)


def _apply_credit(names: tuple[str, ...], tx: Transaction, limits: dict[str, Any], transfers: dict[str, Any],
                  where: str) -> None:
    """Sets the block's credit limits, then moves its loans: the lender's `credit/<id>` balance rises by the Wh
    lent and the borrower's falls by as much. A member is an account with a limit (set in this block or
    before); after the block no member owes more than its limit and the balances of all members sum to 0."""
    member, limit_wh = limits["member"], limits["limit_wh"]
    lender, borrower, wh = transfers["lender"], transfers["borrower"], transfers["wh"]
    if _repeats(member, len(names)) or (len(limit_wh) and limit_wh.min() < 0):
        raise LedgerError(f"{where}: credit_limits sets a member's limit twice, or below 0 Wh")
    if len(wh) and (wh.min() <= 0 or np.any(lender == borrower) or sum(wh.tolist()) >= _LIMIT):
        raise LedgerError(f"{where}: credit_transfers must lend a positive Wh to another member (below 2**62 in all)")
    involved = np.unique(np.concatenate([member, lender, borrower]))
    state = [tx.get(credit_key(names[p])) for p in involved]
    balance = np.array([json.loads(s)["balance_wh"] if s else 0 for s in state], dtype=np.int64)
    limit = np.array([json.loads(s)["limit_wh"] if s else -1 for s in state], dtype=np.int64)  # -1: not a member
    limit[np.searchsorted(involved, member)] = limit_wh
    if np.any(limit < 0):
        raise LedgerError(f"{where}: credit_transfers: {names[involved[limit < 0][0]]} is not a credit member "
                          "(no credit limit set)")
    np.add.at(balance, np.searchsorted(involved, lender), wh)
    np.subtract.at(balance, np.searchsorted(involved, borrower), wh)
    if int(np.abs(balance).max()) >= _LIMIT:  # each below 2**62 before, plus a block's loans below 2**62: no overflow
        raise LedgerError(f"{where}: a credit balance would exceed 2**62 Wh")
    over = np.flatnonzero(balance < -limit)
    if len(over):
        k = over[0]
        raise CreditLimitError(f"{where}: credit: {names[involved[k]]} would owe {-balance[k]} Wh, past its credit "
                               f"limit of {limit[k]} Wh")
    for p, b, lim in zip(involved.tolist(), balance.tolist(), limit.tolist()):
        tx.set(credit_key(names[p]), canonical({"balance_wh": b, "limit_wh": lim}))
    total = sum(json.loads(raw)["balance_wh"] for _, raw in tx.items(b"credit/"))
    if total != 0:
        raise LedgerError(f"{where}: credit balances sum to {total} Wh, not 0")


def _head_header(store: Store | Format1Store, height: int) -> Header:
    """The header of block `height` as the store holds it (its `blocks/<h>` record and root)."""
    if height == 0:
        return GENESIS
    raw = store.snapshot().get(block_key(height))
    if raw is None:
        raise LedgerError(f"{store.path}: the store holds no record of block {height}")
    return Header(**json.loads(raw), state_root=store.root().hex())


def _parse_block(line: bytes, height: int) -> tuple[Header, dict, dict | None]:
    """A block line's header, entries and signature (None: unsigned), checked for shape and canonical bytes."""
    where = f"block {height}"
    try:
        block = parse_json(line)  # nesting past untrusted.MAX_DEPTH is a ValueError too
        header = Header(**block["header"])
        entries = block["entries"]
        signature = block.get("signature")
        exact = canonical(block) + b"\n" == line and set(block) <= {"entries", "header", "signature"}
    except (ValueError, KeyError, TypeError):
        raise LedgerError(f"{where}: not a block (expected JSON with a header and entries)") from None
    if not exact:
        raise LedgerError(f"{where}: not in canonical form (bytes were altered)")
    if signature is not None and not (isinstance(signature, dict) and set(signature) == {"ed25519", "signer"}
                                      and isinstance(signature["signer"], str)
                                      and _HEX_SIGNATURE.match(str(signature["ed25519"]))):
        raise LedgerError(f"{where}: signature must be an object with a signer (did:key) and an ed25519 signature "
                          "(128 hex digits)")
    return header, entries, signature


def _signer_of(header: Header, signature: dict | None, where: str) -> str | None:
    """The did:key that signed the block (None: unsigned), once its signature of the header checks out."""
    if signature is None:
        return None
    did = signature["signer"]
    if verify_signature(did, bytes.fromhex(signature["ed25519"]), signing_message(header)):
        return did
    try:  # which way it fails: a signer that is no did:key, or a signature that is not its
        public_key_of(did)
    except IdentityError as err:
        raise LedgerError(f"{where}: signature: {err}") from None
    raise LedgerError(f"{where}: its signature is not {did}'s signature of its header")


def _signer_name(did: str | None) -> str:
    return "nobody (unsigned)" if did is None else did


@dataclass(frozen=True)
class _Chain:
    """A ledger replayed up to `head`: its accounts, and the did:key that signs its blocks (None: unsigned)."""

    accounts: Accounts
    head: Header
    signer: str | None


_EMPTY_CHAIN = _Chain(Accounts.empty(), GENESIS, None)


def _replay_block(store: Store, chain: _Chain, line: bytes, height: int) -> tuple[_Chain, Transaction]:
    """Checks one block line against the chain so far and commits it to `store`; returns the chain with it.

    Block 1 decides who signs the ledger (or that nobody does); every later block must be signed by the same key.
    """
    header, entries, signature = _parse_block(line, height)
    where = f"block {height}"
    if header.height != height:
        raise LedgerError(f"{where}: header says height {header.height}")
    if header.prev_hash != (chain.head.hash if height > 1 else GENESIS_HASH):
        raise LedgerError(f"{where}: prev_hash does not match block {height - 1}")
    if header.entries_hash != sha256_hex(canonical(entries)):
        raise LedgerError(f"{where}: entries do not match the header's entries_hash")
    signer = _signer_of(header, signature, where)
    if height > 1 and signer != chain.signer:
        raise LedgerError(f"{where}: signed by {_signer_name(signer)}, but the blocks before it by "
                          f"{_signer_name(chain.signer)}")
    tx = store.begin()
    accounts = apply_block(chain.accounts, tx, header, entries)
    root = store.commit(tx).root.hex()
    if root != header.state_root:
        raise LedgerError(f"{where}: state root {header.state_root} differs from the replayed {root}")
    return _Chain(accounts, header, signer), tx


class Ledger:
    """An open ledger folder: appends blocks, signs them and commits them to its store."""

    def __init__(self, folder: Path | str, *, create: bool = False, durable: bool = True,
                 sync_interval_s: float = 0.0, signer: Identity | None = None) -> None:
        """`durable=False`: blocks and checkpoints are not fsynced, for a ledger rebuilt from elsewhere after a
        restart (a lattice node's, from the replicated log); a process crash still leaves a consistent prefix.
        `sync_interval_s`: blocks are fsynced together at most this long after they are appended (a group
        commit; 0: each one as it is appended). `signer`: the key that signs every block (None: unsigned
        blocks); a ledger's blocks all have one signer, so reopening one needs the key that signed it."""
        self.folder = Path(folder)
        if create:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._remove_stale()
            (self.folder / BLOCKS).touch()
        elif not has_ledger(self.folder):
            raise LedgerError(f"{self.folder}: no ledger here (expected {BLOCKS} and {STATE})")
        self.signer = signer
        try:
            self.blocks = BlockLog(self.folder, durable=durable, sync_interval_s=sync_interval_s)
            self.store = Store(self.folder / STATE, durable, log=False)
        except (StoreError, BlockLogError) as err:
            raise LedgerError(f"{self.folder}: {err}") from None
        try:
            self._recover()
        except BaseException:
            self.blocks.close()
            self.store.discard()
            raise
        self.store.set_meta(_OPEN, 1)

    def _remove_stale(self) -> None:
        """Removes an earlier ledger from the folder, state first and blocks from the last, so a crash meanwhile
        leaves a prefix of the earlier blocks (whose state is rebuilt from them) or nothing."""
        stale: list[str | Path] = [STATE + "-wal", STATE + "-shm", STATE, BLOCKS,
                                   *sorted(self.folder.glob("blocks-*.jsonl.*"), reverse=True)]
        for name in stale:
            (self.folder / name).unlink(missing_ok=True)

    def _recover(self) -> None:
        """Loads the checkpoint, then replays the blocks after it (checking every one); drops an unfinished last line."""
        store, height = self.store, self.store.version
        if len(self.blocks) < height:
            raise LedgerError(f"{self.folder / BLOCKS}: {len(self.blocks)} blocks but the store committed {height}")
        chain = _chain_at(store, self.blocks, height)
        self._unsaved_bytes = 0
        for number, line in enumerate(self.blocks.lines(height + 1), start=height + 1):
            chain, _ = _replay_block(store, chain, line, number)
            self._unsaved_bytes += len(line)
        if self.blocks.torn:
            self.blocks.truncate(len(self.blocks))
        self.accounts, self.head = chain.accounts, chain.head
        did = None if self.signer is None else self.signer.did
        if self.height > 0 and did != chain.signer:
            raise LedgerError(f"{self.folder}: its blocks are signed by {_signer_name(chain.signer)}; appending to it "
                              f"needs that key, not {_signer_name(did)}'s")

    @property
    def height(self) -> int:
        return self.store.version

    def append(self, interval: int, time: str, entries: dict) -> Header:
        """Adds the block for one settlement interval; returns its header once committed (written, and fsynced
        now or within `sync_interval_s`)."""
        height = self.height + 1
        entries_json = canonical(entries)
        provisional = Header(height, interval, time, self.head.hash if height > 1 else GENESIS_HASH, "",
                             sha256_hex(entries_json))
        tx = self.store.begin()
        accounts = apply_block(self.accounts, tx, provisional, entries)
        committed: list[Header] = []

        def write_block(commit: Commit) -> None:
            header = replace(provisional, state_root=commit.root.hex())
            signature = None if self.signer is None else sign_header(header, self.signer)
            line = block_line(header, entries_json, signature)
            self.blocks.append(line)
            self._unsaved_bytes += len(line)
            committed.append(header)

        self.store.commit(tx, before_commit=write_block)
        self.accounts, self.head = accounts, committed[0]
        if self._unsaved_bytes >= CHECKPOINT_FACTOR * max(self.store.state_bytes, 1 << 16):
            self.checkpoint()
        return self.head

    def checkpoint(self) -> None:
        """Writes the state at the head to `state.sqlite`, so reopening replays no block before it."""
        self.blocks.sync()  # the blocks a checkpoint stands for are on disk before it
        self.store.checkpoint()
        self._unsaved_bytes = 0

    def close(self) -> None:
        """Makes every block durable, checkpoints the head and records that the writer closed the ledger."""
        self.blocks.close()
        self.store.checkpoint()
        self.store.set_meta(_OPEN, 0)
        self.store.close()


# ---------------------------------------------------------------- reading a ledger folder


def _open_store(folder: Path) -> Store | Format1Store:
    """The ledger's state.sqlite opened for reading; an empty store in memory if it is missing (a writer that died
    before creating it: the blocks are the record, and reopening rebuilds the state from them)."""
    if not has_ledger(folder):
        raise LedgerError(f"{folder}: no ledger here (expected {BLOCKS} and {STATE})")
    if not (folder / STATE).is_file():
        return Store(":memory:", log=False)
    try:
        return open_store(folder / STATE, log=False)
    except StoreError as err:
        raise LedgerError(f"{folder / STATE}: unreadable ({err})") from None


def _block_log(folder: Path) -> BlockLog:
    try:
        return BlockLog(folder, writable=False)
    except BlockLogError as err:
        raise LedgerError(f"{folder}: {err}") from None


def _chain_at(store: Store, blocks: BlockLog, height: int) -> _Chain:
    """The chain as the store holds it at its latest version `height`, signed by whoever signed block `height`."""
    snap = store.snapshot()
    raw = snap.side_get(_ACCOUNTS_KEY)
    accounts = Accounts.load(json.loads(raw) if raw else [], snap.get)
    signer = None
    if height > 0:
        line = next(blocks.lines(height, height), None)
        if line is None:
            raise LedgerError(f"block {height}: missing from {BLOCKS} (state.sqlite committed {height})")
        header, _, signature = _parse_block(line, height)
        signer = _signer_of(header, signature, f"block {height}")
    return _Chain(accounts, _head_header(store, height), signer)


def has_ledger(folder: Path) -> bool:
    """Whether `folder` holds a ledger: its blocks, or at least its state (a writer that died between the two)."""
    return BlockLog.exists(folder) or (folder / STATE).is_file()


def ledger_folder(run_dir: Path | str) -> Path:
    """The ledger folder of a run folder (or the ledger folder itself)."""
    run_dir = Path(run_dir)
    return run_dir / "ledger" if (run_dir / "ledger").is_dir() else run_dir


def _digest(rows: Any) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(canonical([r.hex() if isinstance(r, bytes) else r for r in row]))
    return digest.hexdigest()


class _Format1Rows:
    """The rows a format-1 store holds for a chain of blocks, regenerated through the reference `jmt`."""

    def __init__(self) -> None:
        from plurigrid.state import jmt

        self.jmt = jmt
        self.nodes: dict[tuple[int, str], Any] = {}
        self.root: Any = None
        self.kv: list[tuple] = []
        self.versions: list[tuple] = []

    def add(self, version: int, tx: Transaction) -> None:
        update = self.jmt.apply_batch(lambda v, p: self.nodes[(v, p)], self.root, version, tx.writes)
        self.nodes.update(update.written)
        self.root = update.root
        self.kv += [(0, k, version, v) for k, v in tx.writes.items()]  # format-1 ledgers wrote no side space
        root = self.root
        self.versions.append((version, self.jmt.root_hash(root), None if root is None else root.version,
                              None if root is None else root.key))

    def check(self, store: Format1Store) -> None:
        expected = {
            "nodes": sorted((v, p, n.encode()) for (v, p), n in self.nodes.items()),
            "kv": sorted(self.kv, key=lambda r: (r[0], r[1], r[2])),
            "versions": self.versions,
        }
        order = {"nodes": "version, path", "kv": "space, key, version", "versions": "version"}
        for table, rows in expected.items():
            found = store._db.execute(f"SELECT * FROM {table} ORDER BY {order[table]}")
            if _digest(found) != _digest(rows):
                raise LedgerError(f"state.sqlite: its {table} differ from the replayed blocks")


@dataclass(frozen=True)
class Verdict:
    """What `check` found: a valid ledger up to `head`, who signed it, and whether it is all its writer wrote.

    A ledger whose writer stopped before closing it (a killed run or node) is valid as a prefix: every
    block it committed, up to `head`, and nothing after it.
    """

    head: Header
    signer: str | None  # the did:key that signed every block (None: unsigned, a ledger written before signing)
    closed: bool  # its writer closed it (else it stopped, e.g. was killed, and `head` is its last committed block)
    torn_bytes: int  # an unfinished line after the head: not a block (reopening drops it)
    state_missing: bool  # no state.sqlite (the writer died before creating it; reopening rebuilds it)
    summary: dict | None  # the run folder's summary.json (None: not a run folder, or it wrote none)
    run_folder: bool  # checked as a run folder (its ledger/ inside): a finished run wrote summary.json

    @property
    def prefix(self) -> bool:
        """Whether this is what a writer committed before it stopped, rather than a ledger it finished."""
        return not self.closed or self.torn_bytes > 0 or self.state_missing or (self.run_folder and self.summary is None)

    def describe(self) -> str:
        """One line for a person: valid, height, root and signer, and why it is a prefix if it is one."""
        h = self.head.height
        what = "no block yet" if h == 0 else f"state root {self.head.state_root}, " + \
            (f"signed by {self.signer}" if self.signer else "unsigned (no block is signed)")
        if not self.prefix:
            partial = (self.summary or {}).get("partial")
            if isinstance(partial, dict):
                return (f"valid: height {h} of a partial run (stopped after {partial.get('steps_done')} of "
                        f"{partial.get('steps_planned')} steps), {what}")
            return f"valid: height {h}, {what}"
        why = []
        if not self.closed:
            why.append("its writer stopped before closing it")
        if self.run_folder and self.summary is None:
            why.append("the run wrote no summary.json")
        if self.state_missing:
            why.append(f"{STATE} is missing (reopening rebuilds it from the blocks)")
        if self.torn_bytes:
            why.append(f"an unfinished line of {self.torn_bytes} bytes follows block {h} (not a block; reopening "
                       "drops it)")
        return f"valid prefix: height {h} is its last committed block ({'; '.join(why)}), {what}"


def check(run_dir: Path | str, expect_signer: str | None = None) -> Verdict:
    """Replays every block from nothing and checks it; returns what it found or raises LedgerError naming the fault.

    Checks, per block: canonical bytes, height, the previous block's hash, the entries' hash, the
    signature of the header (every block by the same did:key, or none signed), the ledger's rules
    (conservation, account references) and the state root, both as replayed and as `state.sqlite`
    holds it; then that `state.sqlite` holds exactly what the replay gives (its checkpoint, byte for
    byte; in format 1, every tree node and value row). `expect_signer`: the did:key that must have
    signed it. For a run folder, its summary.json (if the run wrote one) must name the same head.
    """
    run_dir = Path(run_dir)
    folder = ledger_folder(run_dir)
    store = _open_store(folder)
    state_missing = not (folder / STATE).is_file()
    try:
        blocks = _block_log(folder)
        replay = Store(":memory:", log=False)
        checkpoints = set() if isinstance(store, Format1Store) else \
            {v for (v,) in store._db.execute("SELECT version FROM checkpoints")}
        format1 = _Format1Rows() if isinstance(store, Format1Store) and store.oldest == 0 else None
        chain = _EMPTY_CHAIN
        for height, line in enumerate(blocks.lines(), start=1):
            chain, tx = _replay_block(replay, chain, line, height)
            where = f"block {height}"
            if format1 is not None:
                format1.add(height, tx)
            if height > store.version:
                if isinstance(store, Format1Store):
                    raise LedgerError(f"{where}: state.sqlite never committed it (it holds {store.version} blocks)")
                continue  # blocks after the last checkpoint: the blocks themselves are the record
            if height >= store.oldest and store.root(height) != replay.root():
                raise LedgerError(f"{where}: state.sqlite holds root {store.root(height).hex()}, not "
                                  f"{chain.head.state_root}")
            if height in checkpoints:
                assert isinstance(store, Store)  # a format-1 store has no checkpoints
                _check_checkpoint(store, replay, height)
        if store.version > len(blocks):
            raise LedgerError(f"block {len(blocks) + 1}: missing from {BLOCKS} (state.sqlite committed {store.version})")
        if format1 is not None:
            assert isinstance(store, Format1Store)  # format1 is made for a format-1 store only
            format1.check(store)
        elif not isinstance(store, Format1Store) and store._db.execute("SELECT COUNT(*) FROM log").fetchone()[0]:
            raise LedgerError("state.sqlite: its log differs from the replayed blocks (a ledger's store keeps none)")
        closed = isinstance(store, Format1Store) or (not state_missing and store.meta(_OPEN) != 1)
    except StoreError as err:
        raise LedgerError(f"{folder / STATE}: {err}") from None
    finally:
        store.close()
    if expect_signer is not None and chain.head.height > 0 and chain.signer != expect_signer:  # (no block: nobody)
        raise LedgerError(f"signed by {_signer_name(chain.signer)}, not by the expected {expect_signer}")
    run_folder = folder != run_dir
    summary = _run_summary(run_dir, chain) if run_folder else None
    return Verdict(chain.head, chain.signer, closed, blocks.torn_bytes, state_missing, summary, run_folder)


def ledger_summary(head: Header, signer: str | None) -> dict:
    """What a run's summary.json says of its ledger: the head's height, hash and state root, and the signer's did."""
    return {"height": head.height, "head": head.hash, "state_root": head.state_root, "signer": signer}


def _run_summary(run_dir: Path, chain: _Chain) -> dict | None:
    """The run folder's summary.json (None if the run wrote none), checked to name the ledger's head and signer."""
    path = run_dir / "summary.json"
    if not path.is_file():
        return None
    summary = read_json(path, LedgerError)  # a run writes its summary.json whole or not at all
    if not isinstance(summary, dict):
        raise LedgerError(f"{path}: has no ledger object (the height, head and signer of the run's ledger)")
    said = summary.get("ledger")
    if not isinstance(said, dict):
        raise LedgerError(f"{path}: has no ledger object (the height, head and signer of the run's ledger)")
    for name, value in ledger_summary(chain.head, chain.signer).items():
        if name in said and said[name] != value:
            raise LedgerError(f"{path}: ledger.{name} is {said[name]!r}, but the ledger's is {value!r}")
    return summary


def verify(run_dir: Path | str, expect_signer: str | None = None) -> Header:
    """`check`, for callers that need only the head: its header, or LedgerError."""
    return check(run_dir, expect_signer).head


def _check_checkpoint(store: Store, replay: Store, version: int) -> None:
    state, side = store._db.execute("SELECT state, side FROM checkpoints WHERE version = ?", (version,)).fetchone()
    snap = replay.snapshot()
    expected_side = sorted(snap.side_items())
    if state != replay._tree.encode() or side != Store.encode_side(dict(expected_side)):
        raise LedgerError(f"state.sqlite: its checkpoint at block {version} differs from the replayed blocks")


def _replayed(folder: Path, height: int | None = None) -> tuple[Store | Format1Store, int]:
    """The ledger's store holding every committed block up to `height` (default: all), opened for reading.

    A format-1 store or a checkpoint at `height` answers as it is; otherwise the blocks are replayed
    into a store in memory (from the checkpoint when it lies before `height`, else from the start).
    """
    store = _open_store(folder)
    blocks = _block_log(folder)
    last = len(blocks)
    height = last if height is None else height
    if not max(store.oldest, 1) <= height <= max(last, store.version):
        store.close()
        raise LedgerError(f"--height: the ledger holds heights {max(store.oldest, 1)}..{max(last, store.version)}, "
                          f"not {height}")
    if store.provable(height):
        return store, height
    replay, chain, start = Store(":memory:", log=False), _EMPTY_CHAIN, 1
    if store.version < height:  # continue from the checkpoint
        replay.close()
        replay, start = cast(Store, store), store.version + 1  # a format-1 store holds every block: provable above
        chain = _chain_at(replay, blocks, store.version)
    else:
        store.close()
    for number, line in enumerate(blocks.lines(start, height), start=start):
        chain, _ = _replay_block(replay, chain, line, number)
    return replay, height


def prove(run_dir: Path | str, key: str, height: int | None = None) -> dict[str, str]:
    """An ICS-23 vector (JMT spec) for `key` at `height` (default: the head): key, value, proof, root in hex.

    The value is empty when the key is absent; the proof then shows its absence.
    """
    from plurigrid.state.ics23 import encode_commitment_proof

    store, height = _replayed(ledger_folder(run_dir), height)
    try:
        snap = store.snapshot(height)
        raw = key.encode()
        proof = snap.prove(raw)
        value = snap.get(raw) or b""
        return {"key": raw.hex(), "value": value.hex(), "proof": encode_commitment_proof(proof).hex(),
                "root": snap.root.hex()}
    except StoreError as err:
        raise LedgerError(f"{ledger_folder(run_dir) / STATE}: {err}") from None
    finally:
        _close_reader(store)


def _close_reader(store: Store | Format1Store) -> None:
    """Closes a store opened for reading without writing anything (a replay in memory is discarded)."""
    if isinstance(store, Store):
        store.discard()
    else:
        store.close()


def balances(run_dir: Path | str) -> tuple[int, dict[str, dict]]:
    """The head height and every account's state (balance, energy, its last block's bill and meter)."""
    store, height = _replayed(ledger_folder(run_dir))
    try:
        snap = store.snapshot(height)
        prefix = b"accounts/"
        return height, {k[len(prefix):].decode(): json.loads(v) for k, v in snap.items(prefix)}
    finally:
        _close_reader(store)


def history(run_dir: Path | str, account: str) -> list[dict]:
    """Per block: the account's metered Wh and bill parts (micro-units), from the committed blocks.

    Readings of earlier intervals settled in a block are included in its metered Wh and bill (and
    shown as `readings_wh`), so the bills add up to the balance.
    """
    folder = ledger_folder(run_dir)
    _open_store(folder).close()
    accounts: list[str] = []
    rows = []
    for number, line in enumerate(_block_log(folder).lines(), start=1):
        header, entries, _ = _parse_block(line, number)
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
