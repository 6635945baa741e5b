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
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == OPTIMAL

    def to_json(self) -> dict:
        """Plain JSON-ready dict (lists instead of arrays, None for missing)."""
        out = {}
        for key, value in asdict(self).items():
            if isinstance(value, np.ndarray):
                value = [None if not np.isfinite(v) else float(v) for v in value]
            elif isinstance(value, float) and not np.isfinite(value):
                value = None
            out[key] = value
        return out
