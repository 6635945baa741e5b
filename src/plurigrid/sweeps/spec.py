"""A sweep file (TOML): a base microworld and the axes it is varied along.

    [sweep]
    world = "residential"          # base microworld: library name or path (relative to this file)
    seed = 7                       # seeds the random samples and who gets which asset

    [axes]                         # every combination of these values
    battery_share = [0.0, 0.5, 1.0]
    mechanism = ["pay-as-clear", "tariff"]

    [random]                       # `samples` seeded draws, each crossed with every combination of [axes]
    samples = 10
    pv_share = { uniform = [0.0, 1.0] }

Parameters are the names of `points.PARAMETERS` or a dotted path into the microworld spec
(`market.fee_eur_per_kwh`). Errors are one line: `<file>: <field path>: <what was expected>`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from plurigrid.microworld.loader import SpecError, parse_text, validate_model
from plurigrid.microworld.spec import PV, Battery, Strict
from plurigrid.untrusted import InputTooLarge, read_bounded

MAX_SWEEP_BYTES = 1 * 2**20
MAX_POINTS = 1_000_000
Scalar = str | int | float | bool
Value = Scalar | list[Any] | dict[str, Any]


class Draw(Strict):
    """How a random parameter is drawn: exactly one of uniform = [low, high], integers = [low, high] (both
    included) or choice = [values...]."""

    uniform: Annotated[list[float], Field(min_length=2, max_length=2)] | None = None
    integers: Annotated[list[int], Field(min_length=2, max_length=2)] | None = None
    choice: Annotated[list[Value], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one(self) -> Draw:
        given = [k for k in ("uniform", "integers", "choice") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("expected exactly one of uniform = [low, high], integers = [low, high], choice = [...]")
        bounds = self.uniform or self.integers
        if bounds is not None and not bounds[0] <= bounds[1]:
            raise ValueError(f"expected [low, high] with low <= high, got {bounds}")
        return self


class RandomSection(Strict):
    samples: int = Field(ge=1, le=MAX_POINTS, description="how many seeded draws")
    draws: dict[str, Draw] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any) -> Any:
        """Every key but `samples` names a parameter and its distribution."""
        if isinstance(data, dict):
            return {"samples": data.get("samples"), "draws": {k: v for k, v in data.items() if k != "samples"}}
        return data


class SweepSection(Strict):
    name: str | None = Field(None, min_length=1)
    world: str = Field(min_length=1, description="the base microworld: a library name or a path")
    hours: float | None = Field(None, gt=0, description="simulate only the first hours of each point")
    seed: int = Field(0, ge=0, description="seeds the random samples and who gets which asset")
    ledger: bool = Field(False, description="commit each point's settlements to a ledger and report its state root")
    battery: Battery = Field(default_factory=lambda: Battery(capacity_kwh=10.0, power_kw=5.0),
                             description="the battery a participant gains under battery_share")
    pv: PV = Field(default_factory=lambda: PV(kwp=5.0), description="the PV a participant gains under pv_share")
    kpis: list[str] = Field(default_factory=lambda: ["savings_frac", "total_cost", "self_sufficiency", "peak_import_kw",
                                                     "losses_kwh", "welfare"], min_length=1,
                            description="the KPIs the report plots and ranks")


class SweepSpec(Strict):
    sweep: SweepSection
    axes: dict[str, Annotated[list[Value], Field(min_length=1)]] = Field(default_factory=dict)
    random: RandomSection | None = None
    source: str = Field("sweep", exclude=True, description="where this sweep was read from (for messages)")
    base: str | None = Field(None, exclude=True, description="the folder relative paths are read from")

    @field_validator("axes")
    @classmethod
    def _known(cls, axes: dict) -> dict:
        from plurigrid.sweeps.points import check_parameter

        for name in axes:
            check_parameter(name)
        return axes

    @model_validator(mode="after")
    def _parameters(self) -> SweepSpec:
        from plurigrid.sweeps.points import check_parameter

        if self.random is not None:
            for name in self.random.draws:
                check_parameter(name)
            both = sorted(set(self.random.draws) & set(self.axes))
            if both:
                raise ValueError(f"{both[0]!r} is both an axis and a random draw; give it in one of [axes] and [random]")
        if not self.axes and self.random is None:
            raise ValueError("a sweep needs [axes], [random] or both")
        points = math.prod(len(values) for values in self.axes.values()) * (1 if self.random is None else self.random.samples)
        if points > MAX_POINTS:
            raise ValueError(f"{points:,} points: more than {MAX_POINTS:,}; split the sweep or draw [random] samples instead")
        return self

    def world_path(self) -> str:
        """The base world as `plurigrid.load` takes it: a library name, or a path made absolute."""
        return resolve_world(self.sweep.world, self.base)


def resolve_world(world: str, base: str | None) -> str:
    """A library name stays as it is; a relative path is taken relative to the sweep file's folder."""
    path = Path(world)
    if base is None or path.is_absolute() or path.suffix not in (".toml", ".json"):
        return world
    return str(Path(base) / path)


def read_sweep(path: str | Path) -> SweepSpec:
    """Reads and validates a sweep file; every problem is one SpecError line."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(str(path), "", "no such file")
    try:
        text = read_bounded(path, MAX_SWEEP_BYTES).decode("utf-8")
    except InputTooLarge as exc:
        raise SpecError(str(path), "", str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(str(path), "", f"cannot read file ({exc.__class__.__name__})") from None
    return sweep_from_data(parse_text(path.name, text), path.name, str(path.resolve().parent))


def sweep_from_data(data: dict, source: str = "sweep", base: str | None = None) -> SweepSpec:
    """Validates a sweep given as plain data (a dict of the TOML's tables)."""
    try:
        spec = validate_model(source, dict(data), SweepSpec)
    except SpecError as exc:  # the draws sit beside `samples` in the file: their path has no `draws`
        raise SpecError(exc.source, exc.path.replace("random.draws.", "random."), exc.message) from None
    return spec.model_copy(update={"source": source, "base": base})
