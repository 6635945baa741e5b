"""Vectorised device models: battery and EV limits and state updates (all arrays over participants)."""

from __future__ import annotations

import numpy as np


def battery_limits_kw(soc_kwh: np.ndarray, capacity_kwh: np.ndarray, power_kw: np.ndarray, eff: np.ndarray,
                      min_kwh: np.ndarray, dt_h: float) -> tuple[np.ndarray, np.ndarray]:
    """(max charge kW, max discharge kW) this step, from power rating and stored energy (AC side)."""
    safe_eff = np.where(eff > 0, eff, 1.0)
    charge = np.minimum(power_kw, np.maximum(capacity_kwh - soc_kwh, 0.0) / (safe_eff * dt_h))
    discharge = np.minimum(power_kw, np.maximum(soc_kwh - min_kwh, 0.0) * safe_eff / dt_h)
    return charge, discharge


def battery_step_kwh(soc_kwh: np.ndarray, battery_kw: np.ndarray, eff: np.ndarray, dt_h: float) -> np.ndarray:
    """Stored energy after one step of AC power `battery_kw` (+ charge, - discharge) with one-way efficiency."""
    safe_eff = np.where(eff > 0, eff, 1.0)
    return soc_kwh + np.where(battery_kw >= 0, battery_kw * safe_eff, battery_kw / safe_eff) * dt_h


def ev_min_kw(remaining_kwh: np.ndarray, steps_left: np.ndarray, power_kw: np.ndarray, eff: np.ndarray,
              dt_h: float) -> np.ndarray:
    """Least charging power now that still meets the need by departure (least-laxity rule)."""
    safe_eff = np.where(eff > 0, eff, 1.0)
    later_kwh = np.maximum(steps_left - 1, 0) * power_kw * safe_eff * dt_h
    return np.clip((remaining_kwh - later_kwh) / (safe_eff * dt_h), 0.0, power_kw)


def ev_max_kw(remaining_kwh: np.ndarray, power_kw: np.ndarray, eff: np.ndarray, plugged: np.ndarray,
              dt_h: float) -> np.ndarray:
    """Most charging power now: the charger rating, capped by the energy still needed."""
    safe_eff = np.where(eff > 0, eff, 1.0)
    return np.where(plugged, np.minimum(power_kw, np.maximum(remaining_kwh, 0.0) / (safe_eff * dt_h)), 0.0)


def hvac_decay(dt_h: float, resistance_k_per_kw: np.ndarray | float,
               capacitance_kwh_per_k: np.ndarray | float) -> np.ndarray | float:
    """Share of the indoor-outdoor temperature difference left after one step without HVAC: exp(-dt/RC)."""
    return np.exp(-dt_h / (resistance_k_per_kw * capacitance_kwh_per_k))


def indoor_step_c(indoor_c: np.ndarray, outdoor_c: np.ndarray, hvac_kw: np.ndarray, gain_k_per_kw: np.ndarray,
                  decay: np.ndarray) -> np.ndarray:
    """Indoor temperature after one step of the exact RC model; `gain_k_per_kw` = (1 - decay) * +-R * COP."""
    return decay * indoor_c + (1 - decay) * outdoor_c + gain_k_per_kw * hvac_kw


def thermostat_kw(indoor_c: np.ndarray, outdoor_c: np.ndarray, target_c: np.ndarray, gain_k_per_kw: np.ndarray,
                  decay: np.ndarray, p_max_kw: np.ndarray) -> np.ndarray:
    """Least power that brings the room to `target_c` by the end of the step (a thermostat), within 0..p_max."""
    drift_c = decay * indoor_c + (1 - decay) * outdoor_c
    need = np.divide(target_c - drift_c, gain_k_per_kw, out=np.zeros_like(drift_c), where=gain_k_per_kw != 0)
    return np.clip(need, 0.0, p_max_kw)
