/* Battery arbitrage: asks the host for the next 24 h of import prices (capability `prices`) and
 * charges at full power while the current import price is in the cheapest 30 % of that forecast,
 * discharges to cover the participant's own deficit while it is in the dearest 30 %, and otherwise
 * self-consumes (stores own PV surplus, covers own deficit). The net position is traded
 * truthfully: bid = min(value, import price), ask = max(marginal cost, export price). Without a
 * forecast it only self-consumes. The EV is left to the host (missing `ev_kw`: uncontrolled). */
#include <stdlib.h>

#include "abi.h"

#define LOW_QUANTILE 0.3
#define HIGH_QUANTILE 0.7
#define MAX_PRICES 2048

static char forecast_json[65536];
static double forecast[MAX_PRICES];

static double min(double a, double b) { return a < b ? a : b; }
static double max(double a, double b) { return a > b ? a : b; }
static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int ascending(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Reads the forecast import prices into `forecast`, sorted: their count, 0 if unavailable. */
static int sorted_import_forecast(void) {
    int len = plurigrid_prices(forecast_json, sizeof forecast_json);
    int count = 0;
    if (len <= 0 || len > (int)sizeof forecast_json) return 0;
    int at = json_find(forecast_json, len, "import_eur_per_kwh");
    while (at >= 0 && at < len && is_blank(forecast_json[at])) at++;
    if (at < 0 || at >= len || forecast_json[at] != '[') return 0;
    for (at++; count < MAX_PRICES; count++) {
        at = json_number(forecast_json, len, at, &forecast[count]);
        if (at < 0) break;
        while (at < len && (is_blank(forecast_json[at]) || forecast_json[at] == ',')) at++;
    }
    qsort(forecast, count, sizeof forecast[0], ascending);
    return count;
}

/* The q-quantile of the sorted prices, interpolated linearly between neighbours (as numpy's default). */
static double quantile(const double *sorted, int count, double q) {
    double position = q * (count - 1);
    int below = (int)position;
    if (below + 1 >= count) return sorted[count - 1];
    return sorted[below] + (position - below) * (sorted[below + 1] - sorted[below]);
}

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

    int count = sorted_import_forecast();
    if (count > 0) {
        double low = quantile(forecast, count, LOW_QUANTILE), high = quantile(forecast, count, HIGH_QUANTILE);
        if (high > low && import_price <= low) battery_kw = charge_max;
        else if (high > low && import_price >= high) battery_kw = -min(max(-surplus_kw, 0.0), discharge_max);
    }

    out_begin();
    out_number("battery_kw", battery_kw);
    out_number("bid_eur_per_kwh", min(value, import_price));
    out_number("ask_eur_per_kwh", max(marginal_cost, export_price));
    out_bool("trade", 1);
    return out_end();
}
