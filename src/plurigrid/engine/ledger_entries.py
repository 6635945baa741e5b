"""What one step puts in the ledger: its orders, trades, settlements and meter readings as integers.

Why: the ledger commits what was settled, in integer Wh and micro-units, so that a root proves it;
this is the one place that turns a step's result into a block's entries, for the simulator here and
for the lattice's nodes later.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

import numpy as np

from plurigrid.engine.step import StepResult
from plurigrid.engine.world import World
from plurigrid.microworld.privacy import OPEN
from plurigrid.state.identity import Identity
from plurigrid.state.ledger import Header, Ledger


def _micro_per_kwh(eur_per_kwh: np.ndarray) -> np.ndarray | list[int | None]:
    """Prices as integer micro-units per kWh (rounded half to even); None where a strategy gave no finite limit."""
    prices = np.asarray(eur_per_kwh, dtype=float)
    finite = np.isfinite(prices)
    micro = np.rint(np.where(finite, prices, 0.0) * 1e6).astype(np.int64)
    if finite.all():
        return micro
    return [int(m) if f else None for m, f in zip(micro.tolist(), finite.tolist())]


def _ints(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.int64)


def block_entries(world: World, k: int, r: StepResult, open_accounts: bool) -> dict:
    """The block entries of step `k`: accounts are the world's participants, by index."""
    entries: dict = {"accounts": list(world.ids)} if open_accounts else {}
    if open_accounts:  # the data policies the participants consented to, where they differ from the open default
        declared = [i for i, policy in enumerate(world.policies) if policy != OPEN]
        if declared:
            entries["consents"] = {"participant": declared, "version": [world.policies[i].version for i in declared],
                                   "digest": [world.policies[i].digest() for i in declared]}
    book = r.clearing.book
    if book is not None and len(book.buyer) + len(book.seller):
        entries["orders"] = {
            "participant": _ints(np.concatenate([book.buyer, book.seller])),
            "side": ["buy"] * len(book.buyer) + ["sell"] * len(book.seller),
            "wh": _ints(np.concatenate([book.buy_wh, book.sell_wh])),
            "limit_micro_per_kwh": _micro_per_kwh(np.concatenate([book.bid_eur_per_kwh, book.ask_eur_per_kwh])),
        }
    c = r.clearing
    if len(c.trade_wh):
        entries["trades"] = {"buyer": _ints(c.trade_buyer), "seller": _ints(c.trade_seller), "wh": _ints(c.trade_wh),
                             "price_micro_per_kwh": _micro_per_kwh(c.trade_price_eur_per_kwh)}
    st = r.settlement
    parts = {"traded_wh": st.traded_wh, "market_micro": st.market_micro, "tariff_micro": st.tariff_micro,
             "fee_micro": st.fee_micro, "bill_micro": st.bill_micro}
    settled = np.flatnonzero(np.any([v != 0 for v in parts.values()], axis=0))
    if len(settled):
        entries["settlements"] = {"participant": _ints(settled)} | {k: _ints(v[settled]) for k, v in parts.items()}
    metered = np.flatnonzero(st.metered_wh)
    if len(metered):
        entries["meters"] = {"participant": _ints(metered), "wh": _ints(st.metered_wh[metered])}
    entries["grid"] = {"upstream_wh": int(r.upstream_wh), "losses_wh": int(r.losses_wh)}
    return entries


def commit_step(ledger: Ledger, world: World, k: int, r: StepResult, readings: dict | None = None,
                consents: dict | None = None) -> Header:
    """Commits step k's settlement as the ledger's next block (both drivers: the simulator and a lattice replica).

    `readings`: late meter readings of earlier intervals to settle in this block (a replica's; see ledger).
    `consents`: newer data policy versions its hosts announced (a replica's; the world's own are in block 1).
    """
    entries = block_entries(world, k, r, ledger.height == 0)
    if readings:
        entries["readings"] = readings
    if consents:
        first = entries.get("consents", {})
        entries["consents"] = {column: first.get(column, []) + values for column, values in consents.items()}
    return ledger.append(k, world.index[k].isoformat(), entries)


SIGNER_KEY_ENV = "PLURIGRID_SIGNER_KEY"


def default_signer_key() -> Path:
    """Where a user's own signing key lives: $XDG_CONFIG_HOME (default ~/.config) /plurigrid/signer.key."""
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "plurigrid" / "signer.key"


def run_signer(key: str | Path | None = None) -> Identity:
    """The key that signs a run's ledger: the file `key`, else $PLURIGRID_SIGNER_KEY, else the user's own key.

    Why a kept key rather than one per run: the ledger of a run is then the same bytes every time the
    same user runs the same world and seed, and its signer names who ran it; the key stays outside
    the run folder, so a folder shared with others cannot be re-signed by them. Each is created (a raw
    32-byte Ed25519 seed, mode 0600) on first use.
    """
    path = Path(key) if key is not None else Path(os.environ[SIGNER_KEY_ENV]) if os.environ.get(SIGNER_KEY_ENV) \
        else default_signer_key()
    return Identity.load_or_create(path)


SYNC_INTERVAL_S = 0.5  # a simulation's blocks are fsynced together (a run writes up to hundreds a second)
THREAD_MIN_PARTICIPANTS = 1_024  # smaller blocks are committed inline: their hashing keeps the GIL (see _native.c)


class RunLedger:
    """A simulation's ledger folder, written one block per interval on a background thread.

    Why a thread: committing a block of a 10,000-participant grid is ~10 ms, most of it hashing in
    native code without the GIL, so it overlaps the next step. A small world's block takes well under
    a millisecond with the GIL held, where a thread would only add hand-offs: callers pass
    `threaded=False` below THREAD_MIN_PARTICIPANTS. Blocks are committed in order, one at a
    time, so the ledger is the same bytes as if written inline; a ledger error is raised in the
    caller's thread at the next `commit` or at `close`, and `close` waits for every queued block.
    """

    def __init__(self, folder: Path, *, threaded: bool = True, signer: Identity | None = None) -> None:
        self.ledger = Ledger(folder, create=True, sync_interval_s=SYNC_INTERVAL_S, signer=signer)
        self._error: BaseException | None = None
        self._queue: queue.Queue | None = queue.Queue(maxsize=8) if threaded else None
        if self._queue is not None:
            self._thread = threading.Thread(target=self._run, name="plurigrid-ledger", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                try:
                    commit_step(self.ledger, *item)
                except BaseException as exc:  # re-raised in the caller's thread
                    self._error = exc

    def commit(self, world: World, k: int, r: StepResult) -> None:
        """Queues step k's block (a step's result is never changed afterwards, so the thread may read it later)."""
        self._raise()
        if self._queue is None:
            commit_step(self.ledger, world, k, r)
        else:
            self._queue.put((world, k, r))

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    @property
    def head(self) -> Header:
        return self.ledger.head

    def close(self) -> None:
        """Waits for the queued blocks, checkpoints the ledger and closes it; raises a ledger error if one happened."""
        if self._queue is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None
        self.ledger.close()
        self._raise()
