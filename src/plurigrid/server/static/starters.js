// The first values of what the designer adds: an asset when its box is ticked, a profile when its source is
// chosen. Only what the spec requires, and typical sizes of a household's devices.

/** @type {Record<string, Record<string, unknown>>} */
export const ASSET_STARTERS = {
  load: { profile: { source: 'bdew', slp: 'h0', annual_kwh: 3500 } },
  pv: { kwp: 5 },
  wind: { p_kw: 10 },
  hydro: { p_kw: 10 },
  battery: { capacity_kwh: 10, power_kw: 5 },
  ev: { capacity_kwh: 60, power_kw: 11, arrival: '18:00', departure: '07:00', energy_kwh: 20 },
  hvac: { p_max_kw: 3, comfort_min_c: 20, comfort_max_c: 23 },
  thermal: { p_max_kw: 10, variable_cost_eur_per_mwh: 200 },
};

/** By the schema's definition name of the profile. @type {Record<string, Record<string, unknown>>} */
const PROFILE_STARTERS = {
  BdewProfile: { slp: 'h0', annual_kwh: 3500 },
  ConstantProfile: { p_kw: 1 },
  ValuesProfile: { p_kw: [1] },
  PerUnitValues: { per_unit: [1] },
  CsvProfile: { path: 'profile.csv' },
};

/** @param {string} defName */
export function profileStarter(defName) {
  return { ...(PROFILE_STARTERS[defName] ?? {}) };
}
