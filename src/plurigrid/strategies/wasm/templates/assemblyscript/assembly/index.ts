// Self-consumption: the battery stores the participant's own PV surplus and covers its own deficit;
// the net position is traded truthfully (bid the value of energy, ask its marginal cost, each
// bounded by the tariff). The EV is left to the host (missing `ev_kw`: uncontrolled).
import { Decision, Observation } from "./abi";

export { alloc } from "./abi";

export function decide(ptr: usize, len: i32): i64 {
  const obs = new Observation(ptr, len);
  const dtH = obs.get("dt_h", 0.25);
  const socKwh = obs.get("soc_kwh", 0.0);
  const ratedKw = obs.get("battery_kw", 0.0);
  let eff = obs.get("battery_eff", 1.0);
  if (eff <= 0.0) eff = 1.0;
  const importPrice = obs.get("import_eur_per_kwh", 0.0);
  const exportPrice = obs.get("export_eur_per_kwh", 0.0);

  const chargeMax = Math.min(ratedKw, Math.max(obs.get("battery_kwh", 0.0) - socKwh, 0.0) / (eff * dtH));
  const dischargeMax = Math.min(ratedKw, (Math.max(socKwh - obs.get("battery_min_kwh", 0.0), 0.0) * eff) / dtH);
  const surplusKw = obs.get("renewable_kw", 0.0) - obs.get("load_kw", 0.0);
  const batteryKw = surplusKw > 0.0 ? Math.min(surplusKw, chargeMax) : -Math.min(-surplusKw, dischargeMax);

  const out = new Decision();
  out.number("battery_kw", batteryKw);
  out.number("bid_eur_per_kwh", Math.min(obs.get("value_eur_per_kwh", importPrice), importPrice));
  out.number("ask_eur_per_kwh", Math.max(obs.get("marginal_cost_eur_per_kwh", exportPrice), exportPrice));
  out.flag("trade", true);
  return out.finish();
}
