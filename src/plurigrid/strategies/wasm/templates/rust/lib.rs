//! Self-consumption: the battery stores the participant's own PV surplus and covers its own
//! deficit; the net position is traded truthfully (bid the value of energy, ask its marginal cost,
//! each bounded by the tariff). The EV is left to the host (missing `ev_kw`: uncontrolled).
#![no_std]

mod abi;

use abi::{Decision, Observation};

#[no_mangle]
pub extern "C" fn decide(ptr: *const u8, len: usize) -> u64 {
    let obs = unsafe { Observation::from_host(ptr, len) };
    let dt_h = obs.get("dt_h", 0.25);
    let soc_kwh = obs.get("soc_kwh", 0.0);
    let rated_kw = obs.get("battery_kw", 0.0);
    let eff = match obs.get("battery_eff", 1.0) {
        e if e > 0.0 => e,
        _ => 1.0,
    };
    let import_price = obs.get("import_eur_per_kwh", 0.0);
    let export_price = obs.get("export_eur_per_kwh", 0.0);

    let charge_max = rated_kw.min((obs.get("battery_kwh", 0.0) - soc_kwh).max(0.0) / (eff * dt_h));
    let discharge_max = rated_kw.min((soc_kwh - obs.get("battery_min_kwh", 0.0)).max(0.0) * eff / dt_h);
    let surplus_kw = obs.get("renewable_kw", 0.0) - obs.get("load_kw", 0.0);
    let battery_kw = if surplus_kw > 0.0 { surplus_kw.min(charge_max) } else { -(-surplus_kw).min(discharge_max) };

    let mut out = Decision::new();
    out.number("battery_kw", battery_kw);
    out.number("bid_eur_per_kwh", obs.get("value_eur_per_kwh", import_price).min(import_price));
    out.number("ask_eur_per_kwh", obs.get("marginal_cost_eur_per_kwh", export_price).max(export_price));
    out.flag("trade", true);
    out.finish()
}
