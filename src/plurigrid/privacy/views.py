"""A participant's series as an audience may see it: at the granularity its data policy allows.

Why: hourly and daily views are sums of energy and money and means of power and state per clock hour or
day, the same everywhere data leaves (API responses, IBC credits), so one audience never sees two
different coarsenings of the same data that could be combined into a finer one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

_PERIOD = {"hourly": "h", "daily": "D"}


def periods(index: pd.DatetimeIndex, granularity: str) -> np.ndarray:
    """Each interval's period number at an `hourly` or `daily` granularity (each interval its own at `interval`)."""
    if granularity == "interval":
        return np.arange(len(index))
    starts = index.floor(_PERIOD[granularity])
    return np.unique(starts.asi8, return_inverse=True)[1]


def coarsened(index: pd.DatetimeIndex, columns: Mapping[str, Sequence], granularity: str,
              additive: Iterable[str]) -> tuple[pd.DatetimeIndex, dict[str, list]]:
    """A participant's series at `granularity`: per period, sums of the `additive` columns (energy, money) and
    means of the others (power, state), labelled with the period's first interval's time."""
    if granularity == "interval":
        return index, {name: list(values) for name, values in columns.items()}
    group = periods(index, granularity)
    first = np.unique(group, return_index=True)[1]
    summed = set(additive)
    out = {}
    for name, values in columns.items():
        series = pd.Series(np.asarray(values, dtype=float)).groupby(group)
        out[name] = (series.sum(min_count=1) if name in summed else series.mean()).tolist()
    return index[first], out
