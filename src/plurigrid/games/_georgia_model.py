"""The policy side of the `georgia-resilience` game: agents and their menus, the state and how actions move it,
and the shocks a turn may bring (see docs/games-georgia.md for the rules in prose).

The state's four quantities (import diversity, regional cooperation, relations with Russia, transparency and
governance) lie in [0, 1] and move in steps of 1/20, so a state is four integers from 0 to 20: every turn's
state is exact, and equal states give equal simulations (which the day simulator caches).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

LEVELS = 20  # a state quantity is an integer number of twentieths

AGENTS = ("government", "neighbours", "international", "investors")
MENUS: dict[str, tuple[str, ...]] = {
    "government": ("diversify-imports", "regional-cooperation", "diplomacy-russia", "governance-reform", "status-quo"),
    "neighbours": ("cooperate", "neutral", "restrict"),
    "international": ("fund-interconnector", "fund-governance", "none"),
    "investors": ("hydro-storage", "solar", "wind", "wait"),
}
QUANTITIES = ("diversity", "cooperation", "russia", "governance")

# What each action adds to the state, in twentieths (before clipping to 0..LEVELS).
EFFECTS: dict[tuple[str, str], dict[str, int]] = {
    ("government", "diversify-imports"): {"diversity": 3, "russia": -1},  # Moscow reads diversifying as turning away
    ("government", "regional-cooperation"): {"cooperation": 3},
    ("government", "diplomacy-russia"): {"russia": 3},
    ("government", "governance-reform"): {"governance": 3},
    ("neighbours", "cooperate"): {"cooperation": 2},
    ("neighbours", "restrict"): {"cooperation": -2},
    ("international", "fund-interconnector"): {"diversity": 2},
    ("international", "fund-governance"): {"governance": 2},
}
# What each turn takes away without upkeep: contracts lapse, forums idle, reforms erode. Relations with Russia
# change only by actions.
EROSION = {"diversity": 1, "cooperation": 1, "russia": 0, "governance": 1}

# How much of their capacity the neighbours make available to Georgia under each of their actions.
NEIGHBOUR_FACTOR = {"cooperate": 1.0, "neutral": 0.8, "restrict": 0.4}

SHOCKS = ("drought", "import-cutoff", "dam-outage")


@dataclass(frozen=True)
class PolicyState:
    """The game's state, each quantity in twentieths (0..LEVELS)."""

    diversity: int
    cooperation: int
    russia: int
    governance: int

    @classmethod
    def of(cls, diversity: float, cooperation: float, russia: float, governance: float) -> PolicyState:
        """The state nearest to four fractions in [0, 1]."""
        return cls(*(int(np.clip(round(x * LEVELS), 0, LEVELS)) for x in (diversity, cooperation, russia, governance)))

    def frac(self, quantity: str) -> float:
        """A quantity as a fraction in [0, 1]."""
        return getattr(self, quantity) / LEVELS

    def to_json(self) -> dict[str, float]:
        return {q: self.frac(q) for q in QUANTITIES}


@dataclass(frozen=True)
class Stock:
    """Investors' assets built so far, in lumps of each kind (at most MAX_LUMPS of each)."""

    hydro_storage: int = 0
    solar: int = 0
    wind: int = 0

    def add(self, action: str, max_lumps: int) -> Stock:
        """The stock after the investors' action (a kind already at `max_lumps` gets no more)."""
        if action == "wait":
            return self
        field = action.replace("-", "_")
        return replace(self, **{field: min(getattr(self, field) + 1, max_lumps)})

    def lumps(self, action: str) -> int:
        return 0 if action == "wait" else getattr(self, action.replace("-", "_"))


def transition(state: PolicyState, actions: dict[str, str]) -> PolicyState:
    """The state after one turn's actions: erosion, then every action's effect, clipped to 0..LEVELS."""
    values = {q: getattr(state, q) - EROSION[q] for q in QUANTITIES}
    for agent in AGENTS:
        for q, delta in EFFECTS.get((agent, actions[agent]), {}).items():
            values[q] += delta
    return PolicyState(**{q: int(np.clip(v, 0, LEVELS)) for q, v in values.items()})


@dataclass(frozen=True)
class ImportCapacity:
    """Import capacity (MW) that each partner other than Russia makes available this turn."""

    azerbaijan_mw: int
    armenia_mw: int
    turkey_mw: int


def import_capacity(state: PolicyState, neighbours: str) -> ImportCapacity:
    """Cooperation opens the Azerbaijani (100 + 500 c MW) and Armenian (50 + 150 c) links, diversity the Turkish
    HVDC converter (700 d MW, its rating); the neighbours' action scales all three (NEIGHBOUR_FACTOR)."""
    c, d, f = state.frac("cooperation"), state.frac("diversity"), NEIGHBOUR_FACTOR[neighbours]
    return ImportCapacity(int(round((100 + 500 * c) * f)), int(round((50 + 150 * c) * f)), int(round(700 * d * f)))


@dataclass(frozen=True)
class ShockOdds:
    """Per-turn chances: a shock starts (onset, at the worst state) and an active one lasts another turn."""

    drought: float
    cutoff: float  # times (1 - relations with Russia)
    dam_outage: float  # times (1 - governance / 2): maintenance is funded and done
    drought_persists: float
    cutoff_persists: float  # times (1 - relations with Russia): diplomacy ends a cut-off
    dam_outage_persists: float  # times (1 - governance / 2): repairs go faster


def shock_chances(odds: ShockOdds, state: PolicyState, active: frozenset[str]) -> dict[str, float]:
    """The chance that each shock is on in the coming turn, given the state and last turn's shocks."""
    r, g = state.frac("russia"), state.frac("governance")
    onset = {"drought": odds.drought, "import-cutoff": odds.cutoff * (1 - r), "dam-outage": odds.dam_outage * (1 - g / 2)}
    last = {"drought": odds.drought_persists, "import-cutoff": odds.cutoff_persists * (1 - r),
            "dam-outage": odds.dam_outage_persists * (1 - g / 2)}
    return {s: last[s] if s in active else onset[s] for s in SHOCKS}


def draw_shocks(rng: np.random.Generator, chances: dict[str, float]) -> frozenset[str]:
    """The shocks on this turn: one uniform draw per shock, in the fixed order of SHOCKS."""
    u = rng.random(len(SHOCKS))
    return frozenset(s for s, x in zip(SHOCKS, u) if x < chances[s])
