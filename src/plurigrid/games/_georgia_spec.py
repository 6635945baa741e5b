"""The parameters of a `georgia-resilience` study (`ResilienceSpec`): what a GAME.toml's `[resilience]` table
may say, each with a default, a bound and a description; and their reading into one-line errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ConfigDict, Field

from plurigrid.errors import UsageError
from plurigrid.games._georgia_model import PolicyState, ShockOdds
from plurigrid.games.learning import LEARNERS
from plurigrid.microworld.loader import SpecError, validate_model
from plurigrid.microworld.spec import MAX_INT64, MAX_VALUE_EUR_PER_MWH, Strict


class ResilienceSpec(Strict):
    """How many seeded runs of how many turns, how agents learn, and the shocks' odds and strength."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)

    runs: int = Field(20, ge=1, le=10_000, description="seeded runs (each its own shocks and learners)")
    turns: int = Field(12, ge=1, le=1_000, description="turns per run; each turn is one simulated winter day")
    seed: int = Field(0, ge=0, le=MAX_INT64, description="seed of every run's shocks and learners")
    learner: Literal[LEARNERS] = Field("q-learning", description="how every agent learns (games.learning)")  # type: ignore[valid-type]
    hours: int = Field(24, ge=1, le=24, description="hours of each turn's day simulated, from midnight")
    initial_diversity: float = Field(0.2, ge=0, le=1, description="import diversity at the first turn (to 1/20)")
    initial_cooperation: float = Field(0.3, ge=0, le=1, description="regional cooperation at the first turn (to 1/20)")
    initial_russia: float = Field(0.4, ge=0, le=1, description="relations with Russia at the first turn (to 1/20)")
    initial_governance: float = Field(0.5, ge=0, le=1, description="transparency and governance at the first turn (to 1/20)")
    spike_threshold_eur_per_mwh: float = Field(100.0, gt=0, le=MAX_VALUE_EUR_PER_MWH,
                                               description="a price spike is an hour priced above this")
    voll_eur_per_mwh: float = Field(1000.0, ge=0, le=MAX_VALUE_EUR_PER_MWH,
                                    description="value of lost load: what the government counts per MWh shed")
    drought_probability: float = Field(0.15, ge=0, le=1, description="chance a drought starts in a turn")
    cutoff_probability: float = Field(0.35, ge=0, le=1,
                                      description="chance the Russian imports are cut off in a turn, at relations 0")
    dam_outage_probability: float = Field(0.12, ge=0, le=1, description="chance the dam plant fails in a turn, at governance 0")
    drought_persistence: float = Field(0.5, ge=0, le=1, description="chance a drought lasts another turn")
    cutoff_persistence: float = Field(0.7, ge=0, le=1, description="chance a cut-off lasts another turn, at relations 0")
    dam_outage_persistence: float = Field(0.6, ge=0, le=1,
                                          description="chance the dam plant stays out another turn, at governance 0")
    drought_hydro_scale: float = Field(0.5, ge=0, le=1, description="hydro availability in a drought (share of normal)")
    max_lumps: int = Field(4, ge=0, le=20, description="most lumps of each investment the investors can build")

    def initial_state(self) -> PolicyState:
        return PolicyState.of(self.initial_diversity, self.initial_cooperation, self.initial_russia, self.initial_governance)

    def odds(self) -> ShockOdds:
        return ShockOdds(self.drought_probability, self.cutoff_probability, self.dam_outage_probability,
                         self.drought_persistence, self.cutoff_persistence, self.dam_outage_persistence)


def resilience_spec(data: Mapping[str, Any], source: str | None = None) -> ResilienceSpec:
    """`data` (e.g. a GAME.toml's [resilience] table) as a ResilienceSpec; one line naming the first bad field
    (`resilience.<field>`, after `source`, e.g. the game file, when given), worded as the microworld loader words it."""
    try:
        return validate_model(source or "", {"resilience": dict(data)}, _Wrapped).resilience
    except SpecError as exc:
        raise UsageError(str(exc) if source else f"{exc.path}: {exc.message}") from None


class _Wrapped(Strict):
    """The [resilience] table under its own name, so an error's field path reads resilience.<field>."""

    resilience: ResilienceSpec
