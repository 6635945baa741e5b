"""What every OPF formulation returns: one result shape for DC, AC and LinDistFlow."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

OPTIMAL, INFEASIBLE, UNBOUNDED, FAILED = "optimal", "infeasible", "unbounded", "failed"


@dataclass
class OpfResult:
    """Dispatch, prices and timings of one OPF solve; arrays follow OpfNetwork's element order.

    `objective` is the generation cost in the case's money per hour; `lmp` is the marginal cost of
    active-power demand at each bus in money per MWh (NaN where the solver gives no duals).
    `attempts` lists the solver runs in order as "method: status"; the last one gave this result
    (a solve error is retried with other methods before a result is called failed).
    `shadow` holds the shadow prices of limits, one array per kind of limit (see `opf.explain`):
    the change of the objective, in money per hour, per unit the limit is raised.
    """

    model: str
    status: str
    objective: float
    solve_time_s: float
    build_time_s: float
    pg_mw: np.ndarray
    lmp: np.ndarray
    va_deg: np.ndarray
    vm_pu: np.ndarray | None = None
    qg_mvar: np.ndarray | None = None
    branch_p_mw: np.ndarray | None = None  # active power at the from end
    iterations: int = 0
    attempts: list[str] = field(default_factory=list)
    shadow: dict[str, np.ndarray] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == OPTIMAL

    def to_json(self) -> dict:
        """Plain JSON-ready dict (lists instead of arrays, None for missing)."""
        return {key: _plain(value) for key, value in asdict(self).items()}


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [None if not np.isfinite(v) else float(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
