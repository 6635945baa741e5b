"""SimBench grids and their per-element power profiles on a microworld's clock.

SimBench nets carry relative 15-min profiles for one year (2016, leap year, 35,136 rows) in
``net.profiles`` and name each element's profile in its ``profile`` column. ``simbench``'s own
``get_absolute_values`` multiplies every element by the whole year (~50 s for the 9,099-bus
``1-MVLV-semiurb-all-0-sw``); a world needs only the rows its clock covers, so this module maps
the clock onto profile rows first and gathers each distinct profile column once.

Loading a net with ``simbench.get_simbench_net`` parses CSVs (6-9 s); a pickled copy loads in
well under 0.1 s, so ``simbench_net`` keeps one per code under the plurigrid cache directory.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from plurigrid.assets.profiles import ProfileError, _quarter_hour_wall_substeps

if TYPE_CHECKING:
    from pandapower.auxiliary import pandapowerNet

__all__ = [
    "SimbenchError",
    "SIMBENCH_YEAR",
    "simbench_cache_dir",
    "simbench_net",
    "simbench_rows",
    "element_profiles_kw",
]

SIMBENCH_YEAR = 2016
_SLOTS_PER_DAY = 96
_DAYS = 366
_ROWS = _DAYS * _SLOTS_PER_DAY  # 35,136 quarter hours in 2016
_FIRST_TIME, _LAST_TIME = "01.01.2016 00:00", "31.12.2016 23:45"
_FRIDAY = 4  # 2016-01-01 was a Friday (Monday = 0)
_ELEMENT_TABLES = {"load": ("load",), "sgen": ("renewables", "powerplants"), "storage": ("storage",)}


class SimbenchError(ProfileError):
    """A SimBench code, net or profile table cannot be used; the message is one line for people."""


def simbench_cache_dir() -> Path:
    """Where pickled SimBench nets live: ``$PLURIGRID_CACHE/simbench`` (default ``~/.cache/plurigrid``)."""
    root = os.environ.get("PLURIGRID_CACHE") or Path.home() / ".cache" / "plurigrid"
    return Path(root) / "simbench"


def _check_code(code: str) -> None:
    import simbench

    if not isinstance(code, str) or code not in set(simbench.collect_all_simbench_codes()):
        raise SimbenchError(
            f"simbench:{code}: unknown SimBench code; expected e.g. 1-LV-rural1--0-sw "
            "(list them with simbench.collect_all_simbench_codes())"
        )


def _cache_path(code: str) -> Path:
    import pandapower
    import simbench

    # versions in the name: a pickle written by other library versions is never read back
    versions = f"simbench-{simbench.__version__}.pandapower-{pandapower.__version__}"
    return simbench_cache_dir() / f"{code}.{versions}.pkl"


def simbench_net(code: str, *, use_cache: bool = True) -> pandapowerNet:
    """Load the SimBench net ``code`` (e.g. ``1-LV-rural1--0-sw``), from the on-disk cache if there.

    The first load runs ``simbench.get_simbench_net`` and pickles the result to
    ``simbench_cache_dir()``; later loads unpickle it (measured: 0.05 s instead of 6.5 s for
    ``1-LV-rural1--0-sw``, 0.08 s instead of 8.4 s for ``1-MVLV-semiurb-all-0-sw``), giving a net
    equal to a fresh one (``pandapower.toolbox.nets_equal`` and ``net.profiles``). Pickle rather
    than pandapower JSON because JSON loads in 1.4-3.2 s. The cache holds only files this
    function wrote; a damaged or unreadable cache file is rebuilt, an unwritable directory only
    skips caching. Every call returns a fresh net that the caller may modify.
    """
    _check_code(code)
    import simbench

    path = _cache_path(code)
    if use_cache and path.is_file():
        try:
            with open(path, "rb") as fh:
                return pickle.load(fh)
        except Exception:
            pass
    net = simbench.get_simbench_net(code)
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    pickle.dump(net, fh, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(tmp, path)  # atomic: concurrent readers see the old or the new file
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError:
            pass
    return net


def simbench_rows(index: pd.DatetimeIndex, *, align_weekday: bool = False) -> np.ndarray:
    """Rows of SimBench's 2016 profile tables to average for each interval of ``index``.

    Returns int64 of shape (len(index), k): interval i is the mean of rows ``[i, :]``; k > 1
    when the resolution is coarser than 15 min (1 h -> 4 rows). A timestamp maps by its local
    wall-clock day of year and quarter hour onto 2016 (1 Jan -> row 0), so any year wraps onto
    the same profile year; in non-leap years 1 March onward reads one 2016 day earlier (2016 has
    29 February). DST is not corrected: profiles are read at wall-clock time, so the March DST
    day skips one profile hour and the October one reads one twice (SimBench's table itself has
    no DST). ``align_weekday=True`` instead moves each day by -3..+3 days (kept within 2016) to
    a 2016 day with the same weekday, so weekend load shapes land on weekends.
    """
    wall_ns = _quarter_hour_wall_substeps(index)
    flat = pd.DatetimeIndex(wall_ns.ravel())
    day = flat.dayofyear.to_numpy().astype(np.int64) - 1
    if align_weekday:
        shift = (flat.dayofweek.to_numpy() - (_FRIDAY + day) % 7 + 3) % 7 - 3
        day = day + shift
        day = np.where(day < 0, day + 7, np.where(day >= _DAYS, day - 7, day))
    slot = flat.hour.to_numpy().astype(np.int64) * 4 + flat.minute.to_numpy() // 15
    return (day * _SLOTS_PER_DAY + slot).reshape(wall_ns.shape)


def _profile_table(net: pandapowerNet, name: str) -> pd.DataFrame:
    profiles = getattr(net, "profiles", None)
    if not isinstance(profiles, dict) or name not in profiles:
        raise SimbenchError(
            f"simbench: net has no profiles[{name!r}] table; expected a net from simbench_net()"
        )
    table = profiles[name]
    times = table["time"] if "time" in table.columns else None
    if len(table) and (
        len(table) != _ROWS
        or (times is not None and (times.iloc[0] != _FIRST_TIME or times.iloc[-1] != _LAST_TIME))
    ):
        raise SimbenchError(
            f"simbench: profiles[{name!r}] has {len(table)} rows; expected {_ROWS} quarter hours "
            f"from {_FIRST_TIME} to {_LAST_TIME}"
        )
    return table


def element_profiles_kw(
    net: pandapowerNet,
    element: str,
    index: pd.DatetimeIndex,
    *,
    align_weekday: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Absolute power of every row of ``net[element]`` on the clock ``index``: ``(p_kw, q_kvar)``.

    Both arrays have shape (len(index), len(net[element])), columns in table order, values are
    interval means of ``p_mw * relative_profile * 1000`` (and ``q_mvar * ...``), read from
    ``net.profiles`` at the rows ``simbench_rows`` gives. ``element``: ``load`` (p from
    ``<profile>_pload``, q from ``<profile>_qload``), ``sgen`` (from ``renewables`` or
    ``powerplants``) or ``storage``. SimBench has no reactive profiles for sgen and storage, so
    their q follows the p profile (constant power factor; SimBench's sgen q_mvar is 0). An
    element without a profile name keeps its nominal power (factor 1, as in SimBench). Signs are
    pandapower's per table; ``scaling`` and ``in_service`` are left to the power flow.

    Cost grows with len(index) x elements: 96 steps for the 8,772 loads of
    ``1-MVLV-semiurb-all-0-sw`` take ~30 ms, but a full year is 2.5 GB per array, so ask for
    the window being simulated rather than the year.
    """
    tables = _ELEMENT_TABLES.get(element)
    if tables is None:
        raise SimbenchError(
            f"simbench: element {element!r} has no SimBench profiles; expected 'load', 'sgen' or 'storage'"
        )
    rows = simbench_rows(index, align_weekday=align_weekday)
    frame = net[element]
    n_steps, n_elements = rows.shape[0], len(frame)
    if n_elements == 0:
        return np.zeros((n_steps, 0)), np.zeros((n_steps, 0))
    if "profile" not in frame.columns:
        raise SimbenchError(f"simbench: net.{element} has no 'profile' column; expected a SimBench net")

    names = frame["profile"].to_numpy(dtype=object)
    has_profile = pd.notna(names)
    p_names: np.ndarray
    q_names: np.ndarray
    if element == "load":  # numpy's stubs read where(c, x, None) as the one-argument form, which gives indices
        p_names = np.where(has_profile, names.astype(str) + "_pload", None)  # type: ignore[assignment]
        q_names = np.where(has_profile, names.astype(str) + "_qload", None)  # type: ignore[assignment]
    else:
        p_names = q_names = names
    columns = sorted({str(c) for c in np.concatenate([p_names[has_profile], q_names[has_profile]])})

    # gather each distinct profile column once, only at the rows the clock needs
    unique_rows, inverse = np.unique(rows, return_inverse=True)
    relative = np.ones((len(unique_rows), len(columns) + 1))  # last column: no profile -> 1.0
    found = np.zeros(len(columns), dtype=bool)
    for table_name in tables:
        table = _profile_table(net, table_name)
        here = [i for i, c in enumerate(columns) if not found[i] and c in table.columns]
        if here:
            relative[:, here] = table[[columns[i] for i in here]].iloc[unique_rows].to_numpy(dtype=float)
            found[here] = True
    if not found.all():
        missing = columns[int(np.flatnonzero(~found)[0])]
        row = int(np.flatnonzero((p_names == missing) | (q_names == missing))[0])
        label = f" ({frame['name'].iloc[row]})" if "name" in frame.columns else ""
        raise SimbenchError(
            f"simbench: net.{element} row {frame.index[row]}{label} "
            f"needs profile column {missing!r}, which net.profiles[{'/'.join(tables)}] lacks; "
            "expected a SimBench net with its profiles"
        )
    interval_mean = relative[inverse.reshape(rows.shape)].mean(axis=1)  # (n_steps, n_columns + 1)

    lookup = pd.Index(columns)
    p_col = np.where(has_profile, lookup.get_indexer(p_names.astype(str)), len(columns))
    q_col = np.where(has_profile, lookup.get_indexer(q_names.astype(str)), len(columns))
    p_kw = interval_mean[:, p_col]
    p_kw *= frame["p_mw"].to_numpy(dtype=float) * 1000.0  # in place: outputs can be large
    q_kvar = interval_mean[:, q_col]
    q_kvar *= frame["q_mvar"].to_numpy(dtype=float) * 1000.0
    return p_kw, q_kvar
