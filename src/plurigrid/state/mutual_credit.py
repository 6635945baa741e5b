"""Mutual credit in energy among the members of a coalition, kept in the settlement ledger.

Why: members of a coalition (the households of a microgrid, the users of a shared battery) lend each
other energy instead of each settling with the grid, and owe the group what they borrowed, up to a
limit the group sets. The ledger commits every member's `credit/<id>` (`balance_wh`: Wh lent minus Wh
borrowed; `limit_wh`: the most Wh it may owe), so a member proves its balance with ICS-23 to anyone
holding a block's state root, and `ledger.check` replays every loan: the balances sum to zero exactly
and no member owes more than its limit. A loan past a limit is refused (`CreditLimitError`) and
nothing is written. Each call appends one block (`credit_limits` and `credit_transfers` entries, in
account positions like every ledger table); the rules themselves live in `ledger.apply_block`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from numbers import Integral

from plurigrid.errors import UsageError
from plurigrid.state.ledger import Header, Ledger, LedgerError


class MutualCredit:
    """The mutual-credit circle of an open ledger: its members' limits and balances, and loans between them."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def set_limits(self, limits_wh: Mapping[str, int], interval: int, time: str) -> Header:
        """Makes each named account a member with the given credit limit (Wh it may owe), opening accounts the
        ledger does not have yet; one block. A limit below what a member already owes is refused."""
        if not limits_wh:
            raise UsageError("limits_wh: no member given")
        limits = {name: _wh(value, f"limits_wh[{name!r}]", least=0) for name, value in limits_wh.items()}
        new = [name for name in limits if name not in set(self.ledger.accounts.names)]
        positions = {name: p for p, name in enumerate(self.ledger.accounts.names + tuple(new))}
        entries: dict = {"credit_limits": {"member": [positions[name] for name in limits], "limit_wh": list(limits.values())}}
        if new:
            entries["accounts"] = new
        return self.ledger.append(interval, time, entries)

    def lend(self, lender: str, borrower: str, wh: int, interval: int, time: str) -> Header:
        """`lender` lends `wh` (integer Wh, > 0) to `borrower`; one block. Refused past the borrower's limit."""
        return self._transfer([(lender, borrower, wh)], interval, time, "lend")

    def book_trades(self, trades: Iterable[tuple[str, str, int]], interval: int, time: str) -> Header:
        """A coalition's internal trades (buyer, seller, wh) as credit in one block: each seller lends the Wh it
        delivered to its buyer (trades of 0 Wh are skipped). Refused whole if any buyer would pass its limit."""
        loans = [(seller, buyer, wh) for buyer, seller, wh in trades if _wh(wh, "trades: wh", least=0)]
        if not loans:
            raise UsageError("trades: no energy traded (nothing to book)")
        return self._transfer(loans, interval, time, "trades")

    def _transfer(self, loans: list[tuple[str, str, int]], interval: int, time: str, where: str) -> Header:
        positions = {name: p for p, name in enumerate(self.ledger.accounts.names)}
        columns: dict[str, list[int]] = {"lender": [], "borrower": [], "wh": []}
        for lender, borrower, wh in loans:
            for name in (lender, borrower):
                if name not in positions:
                    raise LedgerError(f"{where}: {name!r} is not a credit member (no credit limit set)")
            columns["lender"].append(positions[lender])
            columns["borrower"].append(positions[borrower])
            columns["wh"].append(_wh(wh, f"{where}: wh", least=1))
        return self.ledger.append(interval, time, {"credit_transfers": columns})

    def balances(self) -> dict[str, int]:
        """Every member's balance at the head: Wh lent minus Wh borrowed (they sum to 0)."""
        return {name: state["balance_wh"] for name, state in self._members().items()}

    def limits(self) -> dict[str, int]:
        """Every member's credit limit at the head: the most Wh it may owe."""
        return {name: state["limit_wh"] for name, state in self._members().items()}

    def _members(self) -> dict[str, dict[str, int]]:
        prefix = b"credit/"
        return {key[len(prefix):].decode(): json.loads(raw) for key, raw in self.ledger.store.snapshot().items(prefix)}


def _wh(value: object, where: str, least: int) -> int:
    """An integer amount of Wh of at least `least`, or one line saying what was wrong."""
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < least:
        raise UsageError(f"{where}: {value!r}; expected an integer number of Wh >= {least}")
    return int(value)
