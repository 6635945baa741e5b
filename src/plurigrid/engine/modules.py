"""Participants whose strategy is a sandboxed WASM module: load, observe, decide, fall back, swap.

Each module participant gets its own instance (compiled once per content hash). Every step it
receives the observation of docs/modules.md; its decision is clipped to the same physical limits
as a built-in strategy's. A call that traps, hits a limit or returns an invalid decision never
stops the run: the participant uses its fallback strategy for that step, and the failure is
counted and logged with the module's hash and the reason. Those outcomes are the module's and
repeat run to run (fuel decides them). A call stopped by the wall-clock backstop is not: it is a
host fault, which the participant's fallback covers for the step too, but which is listed in
`host_faults` (summary.json's, with `reproducible: false`) and the log, never passed off as the
module's failure. Modules can be replaced between steps (`swap`); the key-value store survives
when the manifest names the same module.
"""

from __future__ import annotations

import json
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from plurigrid.assets.devices import battery_limits_kw, ev_max_kw
from plurigrid.microworld.privacy import KINDS, DataPolicy, hidden_from_module
from plurigrid.microworld.spec import ModuleRef
from plurigrid.strategies.base import Decision, Observation
from plurigrid.strategies.builtin import BUILTIN
from plurigrid.strategies.wasm.host import (
    DEADLINE,
    DECISION_FLAGS,
    DECISION_NUMBERS,
    CallResult,
    ModuleError,
    ModuleInstance,
    compile_module,
    encode_json,
)
from plurigrid.strategies.wasm.manifest import Manifest, effective, load_manifest, manifest_path_for, verify_module

LOG_KEEP = 1000  # module log lines and failures kept per run (and host faults listed)
DECISION_KEYS = tuple(sorted(DECISION_NUMBERS | DECISION_FLAGS))
# the observation as the ABI names it (docs/modules.md), in the order it is written
_OBSERVED: dict[str, Callable[[Observation], np.ndarray]] = {
    "load_kw": lambda o: o.load_kw,
    "renewable_kw": lambda o: o.renewable_kw,
    "flexible_frac": lambda o: o.demand.flexible_frac,
    "max_delay_steps": lambda o: o.demand.max_delay_steps,
    "backlog_kwh": lambda o: o.backlog_kwh,
    "backlog_age_steps": lambda o: o.backlog_age_steps,
    "soc_kwh": lambda o: o.soc_kwh,
    "battery_kwh": lambda o: o.batteries.capacity_kwh,
    "battery_kw": lambda o: o.batteries.power_kw,
    "battery_eff": lambda o: o.batteries.efficiency,
    "battery_min_kwh": lambda o: o.batteries.min_kwh,
    "ev_remaining_kwh": lambda o: o.ev_remaining_kwh,
    "ev_kw": lambda o: o.evs.power_kw,
    "ev_eff": lambda o: o.evs.efficiency,
    "ev_plugged": lambda o: o.ev_plugged,
    "ev_steps_left": lambda o: o.ev_steps_left,
    "indoor_c": lambda o: o.indoor_c,
    "value_eur_per_kwh": lambda o: o.demand.value_eur_per_kwh,
    "marginal_cost_eur_per_kwh": lambda o: o.thermal.marginal_cost_eur_per_kwh,
}
# the kind of data (microworld/privacy.py) each observed field is of the participant: what its policy may withhold
_KIND_OF_FIELD = {
    **dict.fromkeys(("load_kw", "renewable_kw", "backlog_kwh", "backlog_age_steps", "soc_kwh", "ev_remaining_kwh",
                     "ev_plugged", "ev_steps_left", "indoor_c"), "meter"),
    **dict.fromkeys(("battery_kwh", "battery_kw", "battery_eff", "battery_min_kwh", "ev_kw", "ev_eff",
                     "marginal_cost_eur_per_kwh"), "devices"),
    **dict.fromkeys(("flexible_frac", "max_delay_steps", "value_eur_per_kwh"), "preferences"),
}


@dataclass
class ModuleSlot:
    """One participant's module: what was granted, its instance, and how it fared."""

    participant: int
    path: Path
    manifest: Manifest
    instance: ModuleInstance
    failures: int = 0
    fuel_used: int = 0
    host_faults: int = 0


@dataclass
class ModuleRunner:
    """All module participants of a world (built at compile time so bad modules fail early)."""

    slots: dict[int, ModuleSlot]
    ids: list[str]
    meter_kwh: np.ndarray  # each participant's metered net energy of the last step (what `read_meter` returns)
    seed: int = 0  # the world's: each participant's WASI random stream derives from it
    offline: set[int] = field(default_factory=set)  # module participants cut off from the market last step
    log: list[str] = field(default_factory=list)
    host_faults: list[dict] = field(default_factory=list)  # calls the wall-clock backstop stopped (at most LOG_KEEP)
    inbox: dict[int, list[dict]] = field(default_factory=dict)
    policies: tuple[DataPolicy, ...] = ()  # each participant's data policy (none given: all open)
    hidden: dict[str, np.ndarray] = field(default_factory=dict)  # kind → which participants' modules may not read it
    _ids_json: list[bytes] = field(init=False, repr=False)  # each id as JSON (observations quote it every step)

    def __post_init__(self) -> None:
        """Encodes the participant ids as JSON once."""
        self._ids_json = [encode_json(i).encode() for i in self.ids]
        self.apply_policies(self.policies)

    def apply_policies(self, policies: tuple[DataPolicy, ...]) -> None:
        """What each module may read from now on (a node applies its own participants' policies from NODE.toml)."""
        self.policies, self.hidden = policies, {}
        for i in self.slots:
            self._hide(i)

    def _hide(self, i: int) -> None:
        """Marks what participant i's module may not read: its policy against the side channels it was granted."""
        kinds = hidden_from_module(self.policies[i], self.slots[i].manifest.capabilities) if self.policies else frozenset()
        for kind in KINDS:
            if kind in kinds:
                self.hidden.setdefault(kind, np.zeros(len(self.ids), dtype=bool))[i] = True
            elif kind in self.hidden:
                self.hidden[kind][i] = False

    @property
    def members(self) -> np.ndarray:
        return np.fromiter(self.slots, dtype=np.int64, count=len(self.slots))

    def decide(self, obs: Observation, online: np.ndarray, out: Decision, rng: np.random.Generator, now_ms: int,
               time_iso: str, events: list[dict] | None = None) -> None:
        """Runs the online module participants' `decide`; failed ones use their fallback strategy.

        Before it, a participant that has just lost the market gets `on_offline`, one that is back
        `on_online`, and online ones get `on_event` when scenario events start this step, each with
        {"abi", "participant", "step"} (and "events": the events as the spec states them).
        """
        members = online.tolist()
        offline = set(self.slots) - set(members)
        for handler, changed in (("on_offline", offline - self.offline), ("on_online", self.offline - offline)):
            for i in sorted(changed):
                self._lifecycle(i, handler, obs.step)
        self.offline = offline
        for i in members if events else ():
            self._lifecycle(i, "on_event", obs.step, events=events)
        inbox, self.inbox = self.inbox, {}
        payloads = self._observations(obs, online, members, time_iso, inbox)
        imp, exp = obs.import_forecast_eur_per_kwh, obs.export_forecast_eur_per_kwh
        prices = json.dumps({"import_eur_per_kwh": imp.tolist(), "export_eur_per_kwh": exp.tolist()}).encode()
        meter = np.where(self.hidden["meter"], np.nan, self.meter_kwh)[online].tolist() if "meter" in self.hidden \
            else self.meter_kwh[online].tolist()
        wanted = {key: np.full(len(members), np.nan) for key in DECISION_KEYS}
        ok = np.zeros(len(members), dtype=bool)
        failed: dict[str, list[int]] = {}
        slots = self.slots
        for j, (i, payload, meter_kwh) in enumerate(zip(members, payloads, meter)):
            slot = slots[i]
            instance = slot.instance
            ctx = instance.context
            ctx.now_ms, ctx.meter_kwh, ctx.prices_json = now_ms, meter_kwh, prices
            decision, result = instance.decide_payload(payload)
            commanded = ctx.setpoints[-1] if ctx.setpoints else None  # the last `set_setpoint` of the call
            ctx.setpoints.clear()
            slot.fuel_used += result.fuel_used
            if ctx.log_lines or ctx.outbox:
                self._collect(slot, obs.step)
            if decision is None:
                self._failed(slot, obs.step, "decide", result, f"; fallback {slot.manifest.fallback}")
                failed.setdefault(slot.manifest.fallback, []).append(i)
                continue
            ok[j] = True
            for key, value in decision.items():
                wanted[key][j] = value
            if commanded is not None:  # `set_setpoint` commands the battery: it wins over the decision's battery_kw
                wanted["battery_kw"][j] = commanded / 1000
        _apply(wanted, obs, online[ok], ok, out)
        for strategy, fallen in failed.items():
            BUILTIN[strategy](obs, np.array(fallen, dtype=np.int64), out, rng)

    def _observations(self, obs: Observation, online: np.ndarray, members: list[int], time_iso: str,
                      inbox: dict[int, list[dict]]) -> list[bytes]:
        """Each member's observation as the ABI's compact JSON (docs/modules.md), built column by column.

        The bytes are what `encode_json` gives for the dict {"participant", the step's common fields,
        the observed fields, "inbox"}, but the common part and every field whose value all members
        share are encoded once into a template and the other fields once per distinct value, leaving
        one bytes format per participant.
        """
        if not members:
            return []
        imp, exp = obs.import_forecast_eur_per_kwh, obs.export_forecast_eur_per_kwh
        common = encode_json({"abi": 1, "step": obs.step, "time": time_iso, "dt_h": obs.dt_h,
                              "import_eur_per_kwh": float(imp[0]), "export_eur_per_kwh": float(exp[0]),
                              "last_price_eur_per_kwh": _finite(obs.last_price_eur_per_kwh)}).encode()
        ids = self._ids_json
        parts, columns = [b'{"participant":%s,', common[1:-1].replace(b"%", b"%%")], [[ids[i] for i in members]]
        for name, read in _OBSERVED.items():
            texts = _encoded(read(obs), online)
            withheld = self.hidden.get(_KIND_OF_FIELD.get(name, ""))
            if withheld is not None and withheld[online].any():
                texts = [b"null" if w else t for t, w in zip([texts] * len(members) if isinstance(texts, bytes) else texts,
                                                             withheld[online])]
            key = b"," + encode_json(name).encode() + b":"
            if isinstance(texts, bytes):  # a number, true, false or null: no % to escape
                parts.append(key + texts)
            else:
                parts.append(key + b"%s")
                columns.append(texts)
        if inbox:
            messages = {i: encode_json(m).encode() for i, m in inbox.items()}
            parts.append(b',"inbox":%s}')
            columns.append([messages.get(i, b"[]") for i in members])
        else:
            parts.append(b',"inbox":[]}')
        template = b"".join(parts)
        return [template % row for row in zip(*columns)]

    def swap(self, participant_id: str, path: Path, step: int, manifest_path: Path | None = None) -> ModuleSlot:
        """Replaces a participant's module between steps; its kv store is kept when the module name matches."""
        i = self.ids.index(participant_id)
        old = self.slots[i]
        manifest = _manifest(path, manifest_path)
        keep = manifest.name == old.manifest.name
        slot, init = _slot(i, path, manifest, self.seed, kv=old.instance.kv if keep else None)
        self.slots[i] = slot
        self._hide(i)
        self._note(f"step {step}: {participant_id}: module {old.manifest.name} {old.manifest.sha256[:12]} -> "
                   f"{manifest.name} {manifest.sha256[:12]} ({'kv kept' if keep else 'kv reset'})")
        if not init.ok:
            self._failed(slot, step, "init", init)
        return slot

    def report(self) -> dict[str, dict]:
        """Per module participant: module name, version, content hash, failures, host faults, fuel used."""
        return {self.ids[i]: {"module": s.manifest.name, "version": s.manifest.version, "sha256": s.manifest.sha256,
                              "strategy_failures": s.failures, "host_faults": s.host_faults, "fuel_used": s.fuel_used}
                for i, s in self.slots.items()}

    def _lifecycle(self, i: int, handler: str, step: int, **extra) -> None:
        """Calls a lifecycle handler; a failure is counted and logged like a failed `decide`."""
        slot = self.slots[i]
        payload = encode_json({"abi": 1, "participant": self.ids[i], "step": step, **extra}).encode()
        result = slot.instance.call(handler, payload)
        slot.fuel_used += result.fuel_used
        self._collect(slot, step)
        if not result.ok:
            self._failed(slot, step, handler, result)

    def _failed(self, slot: ModuleSlot, step: int, handler: str, result: CallResult, then: str = "") -> None:
        """Counts and logs a failed call: the module's failure, or a host fault when the backstop stopped it."""
        where = f"step {step}: {self.ids[slot.participant]}: module {slot.manifest.name} {slot.manifest.sha256[:12]}: "
        what = "" if handler == "decide" else f"{handler}: "
        if result.error != DEADLINE:
            slot.failures += 1
            self._note(f"{where}{what}{result.error}{then}")
            return
        slot.host_faults += 1
        fault = (f"host fault: {handler} ran past the wall-clock backstop of {slot.instance.deadline_ms:,.0f} ms "
                 f"(fuel used {result.fuel_used:,} of {slot.instance.limits.fuel:,})")
        if len(self.host_faults) < LOG_KEEP:
            self.host_faults.append({"step": step, "participant": self.ids[slot.participant], "module": slot.manifest.name,
                                     "sha256": slot.manifest.sha256, "fault": fault})
        self._note(f"{where}{fault}{then}; the run is not reproducible")

    def _collect(self, slot: ModuleSlot, step: int) -> None:
        ctx = slot.instance.context
        for line in ctx.log_lines:
            self._note(f"step {step}: {self.ids[slot.participant]}: {line}")
        ctx.log_lines.clear()
        for to, message in ctx.outbox:
            if to in self.ids:
                self.inbox.setdefault(self.ids.index(to), []).append(
                    {"from": self.ids[slot.participant], "message": message.decode("utf-8", "replace")})
        ctx.outbox.clear()

    def _note(self, line: str) -> None:
        if len(self.log) < LOG_KEEP:
            self.log.append(line)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _encoded(values: np.ndarray, members: np.ndarray) -> bytes | list[bytes]:
    """The members' values as JSON, exactly as `encode_json` writes them (NaN and infinities as null).

    One text when all members share the value (common: device parameters, absent devices), else
    one per member; either way each distinct value (by its bits, so -0.0 stays apart from 0.0) is
    written once, as float formatting is the slow part.
    """
    picked = np.asarray(values)[members]
    key = picked.view(f"u{picked.itemsize}") if picked.dtype.kind == "f" else picked
    if (key == key[0]).all():
        return _texts(picked[:1])[0]
    distinct, where = np.unique(key, return_inverse=True)
    return np.array(_texts(distinct.view(picked.dtype)), dtype=object)[where].tolist()


def _texts(values: np.ndarray) -> list[bytes]:
    """Each value as JSON (the encoder's own output, split at its commas: numbers, booleans and null have none)."""
    plain = values.tolist()
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        if not finite.all():
            plain = [v if f else None for v, f in zip(plain, finite.tolist())]
    return encode_json(plain)[1:-1].encode().split(b",")


def _apply(wanted: dict[str, np.ndarray], obs: Observation, m: np.ndarray, ok: np.ndarray, out: Decision) -> None:
    """Writes the modules' decisions for participants m, clipped to this step's physical and tariff limits.

    A key a module left out means what `passive` does: no battery use, the EV charging uncontrolled,
    no shifting, no trading (limit prices then default to the participant's value and cost).
    """
    if not len(m):
        return
    w = {key: values[ok] for key, values in wanted.items()}

    def given(key: str, default: np.ndarray | float) -> np.ndarray:
        return np.where(np.isnan(w[key]), default, w[key])

    b, ev = obs.batteries, obs.evs
    charge_max, discharge_max = battery_limits_kw(obs.soc_kwh[m], b.capacity_kwh[m], b.power_kw[m], b.efficiency[m],
                                                  b.min_kwh[m], obs.dt_h)
    ev_most = ev_max_kw(obs.ev_remaining_kwh[m], ev.power_kw[m], ev.efficiency[m], obs.ev_plugged[m], obs.dt_h)
    imp, exp = obs.import_forecast_eur_per_kwh[0], obs.export_forecast_eur_per_kwh[0]
    out.battery_kw[m] = np.clip(given("battery_kw", 0.0), -discharge_max, charge_max)
    out.ev_kw[m] = np.clip(given("ev_kw", ev_most), 0.0, ev_most)
    out.shift_kw[m] = np.clip(given("shift_kw", 0.0), 0.0, obs.demand.flexible_frac[m] * obs.load_kw[m])
    out.serve_kw[m] = np.clip(given("serve_kw", 0.0), 0.0, obs.backlog_kwh[m] / obs.dt_h)
    out.bid_eur_per_kwh[m] = np.clip(given("bid_eur_per_kwh", obs.demand.value_eur_per_kwh[m]), exp, imp)
    out.ask_eur_per_kwh[m] = np.clip(given("ask_eur_per_kwh", obs.thermal.marginal_cost_eur_per_kwh[m]), exp, imp)
    out.trades[m] = given("trade", 0.0) > 0.5


def _manifest(path: Path, manifest_path: Path | None) -> Manifest:
    if not path.is_file():
        raise ModuleError(f"{path}: no such file")
    manifest = load_manifest(manifest_path or manifest_path_for(path))
    verify_module(manifest, compile_module(path).sha256, str(path))
    return manifest


def _slot(i: int, path: Path, manifest: Manifest, seed: int,
          kv: MutableMapping[bytes, bytes] | None = None) -> tuple[ModuleSlot, CallResult]:
    """Participant i's fresh instance, and how its `init` call went."""
    instance = ModuleInstance(compile_module(path), manifest.capabilities, manifest.limits, kv=kv, seed=seed * 1_000_003 + i)
    return ModuleSlot(i, path, manifest, instance), instance.call("init", b'{"abi":1}')


@dataclass(frozen=True)
class ModulePlan:
    """A participant's module, checked against its manifest and grants: what a run starts an instance of."""

    participant: int
    path: Path
    manifest: Manifest


def plan_module(i: int, ref: ModuleRef, base_dir: Path | None) -> ModulePlan:
    """Participant i's module as its spec names it; raises ModuleError/ManifestError on a bad file or grant."""
    def resolve(name: str) -> Path:
        return Path(name) if base_dir is None or Path(name).is_absolute() else base_dir / name

    path = resolve(ref.path)
    manifest = effective(_manifest(path, None if ref.manifest is None else resolve(ref.manifest)), ref.grants,
                         ref.limits.model_dump())
    if ref.fallback is not None:
        manifest = replace(manifest, fallback=ref.fallback)
    return ModulePlan(i, path, manifest)


def start_modules(plans: dict[int, ModulePlan], ids: list[str], seed: int = 0,
                  policies: tuple[DataPolicy, ...] = ()) -> ModuleRunner | None:
    """Fresh instances of the planned modules (each `init` called), or None when there are none.

    `seed` is the world's: participant i's WASI random stream starts from it and i. `policies`: what each module
    may read of its participant (its fields of a withheld kind are null, `read_meter` NaN).
    """
    if not plans:
        return None
    started = {i: _slot(i, plan.path, plan.manifest, seed) for i, plan in plans.items()}
    runner = ModuleRunner({i: slot for i, (slot, _) in started.items()}, ids, meter_kwh=np.zeros(len(ids)), seed=seed,
                          policies=policies)
    for slot, init in started.values():
        if not init.ok:
            runner._failed(slot, 0, "init", init)
    return runner
