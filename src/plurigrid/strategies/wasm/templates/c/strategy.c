/* Self-consumption: the battery stores the participant's own PV surplus and covers its own
 * deficit; the net position is traded truthfully (bid the value of energy, ask its marginal cost,
 * each bounded by the tariff). The EV is left to the host (missing `ev_kw`: uncontrolled). */
#include "abi.h"

static double min(double a, double b) { return a < b ? a : b; }
static double max(double a, double b) { return a > b ? a : b; }

PLURIGRID_EXPORT("decide") long long decide(const char *obs, int len) {
    double dt_h = json_get(obs, len, "dt_h", 0.25);
    double load_kw = json_get(obs, len, "load_kw", 0.0);
    double renewable_kw = json_get(obs, len, "renewable_kw", 0.0);
    double soc_kwh = json_get(obs, len, "soc_kwh", 0.0);
    double capacity_kwh = json_get(obs, len, "battery_kwh", 0.0);
    double rated_kw = json_get(obs, len, "battery_kw", 0.0);
    double eff = json_get(obs, len, "battery_eff", 1.0);
    double min_kwh = json_get(obs, len, "battery_min_kwh", 0.0);
    double import_price = json_get(obs, len, "import_eur_per_kwh", 0.0);
    double export_price = json_get(obs, len, "export_eur_per_kwh", 0.0);
    double value = json_get(obs, len, "value_eur_per_kwh", import_price);
    double marginal_cost = json_get(obs, len, "marginal_cost_eur_per_kwh", export_price);

    if (eff <= 0.0) eff = 1.0;
    double charge_max = min(rated_kw, max(capacity_kwh - soc_kwh, 0.0) / (eff * dt_h));
    double discharge_max = min(rated_kw, max(soc_kwh - min_kwh, 0.0) * eff / dt_h);
    double surplus_kw = renewable_kw - load_kw;
    double battery_kw = surplus_kw > 0.0 ? min(surplus_kw, charge_max) : -min(-surplus_kw, discharge_max);

    out_begin();
    out_number("battery_kw", battery_kw);
    out_number("bid_eur_per_kwh", min(value, import_price));
    out_number("ask_eur_per_kwh", max(marginal_cost, export_price));
    out_bool("trade", 1);
    return out_end();
}
