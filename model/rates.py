"""Annual rates and hazard ratios: step probabilities, log ratios, and per-group factor tables.

Hazards are built in log space: a sum of log hazard ratios with one exp at the end (the multiplicative
model of docs/ODD.md, section 2). An event with hazard h in a step of dt years happens with probability
1 - exp(-h dt). The compiled processes draw events from these (model.jit); this module prepares
what they read.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from oudsim.model.binding import parameter_names
from oudsim.model.jit import njit

F32 = np.float32


def prob(rate, dt_years: float):
    """Probability of at least one event in a step: p = 1 - exp(-rate * dt) (arrays or scalars)."""
    if isinstance(rate, float | int):
        return -math.expm1(-rate * dt_years)
    # rate * -dt is exactly -rate * dt (negation is exact), and in place it takes three passes, not four
    x = np.multiply(np.asarray(rate, dtype=F32), F32(-dt_years))
    if not isinstance(x, np.ndarray):  # a 0-d rate gives a scalar
        return -np.expm1(x)
    np.expm1(x, out=x)
    return np.negative(x, out=x)


@functools.lru_cache(maxsize=4096)  # ~45 calls a step on a few dozen parameter values
def log_hr(hr: float) -> np.float32:
    """log of a hazard ratio; a ratio of 0 (mechanism blocks the event) maps to a very negative number."""
    return F32(math.log(max(hr, 1e-30)))


@functools.lru_cache(maxsize=1024)
def log_values(values: tuple[float, ...]) -> np.ndarray:
    """log of a tuple of rates or ratios as float32 (0 maps to a very negative number); cached, so a
    step reads it instead of rebuilding it. Read-only: callers share it."""
    out = np.log(np.maximum(np.asarray(values, dtype=F32), F32(1e-30)))
    out.flags.writeable = False
    return out


class GroupFactors:
    """Per-person log factors that depend only on (age band, SES, ACE) and on parameters.

    Kept as arrays so a step reads them instead of rebuilding them; rebuilt in place when the
    parameters behind them change, and row by row when someone's group changes (newcomers, a birthday
    into the next age band). All of them are rows of one array, so a change of group updates them
    together. The array is made once for ``capacity`` names, so the view a process gets stays valid for
    the model's life (processes keep it with their other arguments).
    """

    def __init__(self, capacity: int = 8) -> None:
        # name -> (copies of the parameter lists the row was built from, row, its view, largest value)
        self._entries: dict[str, tuple[tuple, int, np.ndarray, float]] = {}
        self._capacity = capacity
        self._tables = np.zeros((capacity, 45), dtype=F32)  # one row per name: the factor by group
        self._values: np.ndarray | None = None  # one row per name: the factor by person
        self._used: tuple[np.ndarray, np.ndarray] | None = None  # the rows in use of both

    def get(self, name: str, group: np.ndarray, age=None, ses=None, ace=None) -> tuple[np.ndarray, float]:
        """(log factor of each person, the largest value any group can take)."""
        key = (age, ses, ace)  # parameter lists, compared with copies of those the entry was built from
        entry = self._entries.get(name)
        if entry is None or entry[0] != key:
            table = _group_table(age, ses, ace)
            if self._values is None:
                self._values = np.zeros((self._capacity, group.size), dtype=F32)
            if entry is None:
                row = len(self._entries)
                if row == self._capacity:
                    raise ValueError(f"GroupFactors holds {self._capacity} names; make it with a larger capacity")
                self._used = (self._values[: row + 1], self._tables[: row + 1])
            else:
                row = entry[1]
            self._tables[row] = table
            self._values[row] = table[group]
            copies = tuple(None if v is None else list(v) for v in key)
            entry = self._entries[name] = (copies, row, self._values[row], float(table.max()))
        return entry[2], entry[3]

    def update_rows(self, rows: np.ndarray, group: np.ndarray) -> None:
        if self._used is not None:
            _update_rows(*self._used, rows, group)


@njit
def _update_rows(values, tables, rows, group):
    """values[:, rows] = tables[:, group[rows]] (one compiled call: numpy's 2-D indexing costs ~5 us)."""
    for j in range(rows.size):
        i = rows[j]
        g = group[i]
        for k in range(values.shape[0]):
            values[k, i] = tables[k, g]


def _group_table(age=None, ses=None, ace=None) -> np.ndarray:
    t = np.zeros((5, 3, 3), dtype=F32)
    for values, shape in ((age, (5, 1, 1)), (ses, (1, 3, 1)), (ace, (1, 1, 3))):
        if values is not None:
            t += np.log(np.maximum(np.asarray(values, dtype=F32), F32(1e-30))).reshape(shape)
    return t.reshape(-1)


def per_parameters(derive):
    """Cache ``derive(m)`` on the model for as long as ``m.params`` is the same parameter set.

    What a process derives from the parameters (log ratios, step probabilities, tables) changes only
    when the parameters do (an intervention starts, a slider moves: each makes a new, frozen set), so
    it is computed once per set instead of every step (~20 attribute reads and conversions a process).
    Processes keep their compiled function's whole argument list this way, arrays included: a model's
    arrays are made once and changed in place (GroupFactors' views too), so the list stays valid.
    """

    @functools.wraps(derive)
    def cached(m):
        entry = m.derived.get(cached)
        if entry is None or entry[0] is not m.params:
            entry = m.derived[cached] = (m.params, derive(m))
        return entry[1]

    return cached


def pos(x: float) -> float:
    """The part of a log factor that can raise a hazard (for bounds): max(x, 0)."""
    return x if x > 0 else 0.0


def upper_bound(hazard, /, **values) -> float:
    """The largest value a hazard function can take, from its own terms: each parameter named ``l_*``
    (a log hazard ratio) at max(0, the value given) and every other parameter at the value given, or
    at 1 if none is (flags and scores in [0, 1] at their largest). A hazard is a sum of log ratios
    times non-negative factors (or exp of one), so this is its maximum; thinning and skipping bounds
    are derived this way so they cannot drift from the hazard they bound. Evaluated in Python doubles,
    once per parameter set."""
    names = parameter_names(hazard)
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise TypeError(f"{hazard.__name__} has no term {', '.join(unknown)} (it takes {names})")
    missing = [n for n in names if n.startswith("l_") and n not in values]
    if missing:
        raise TypeError(f"{hazard.__name__}: give the log ratios {', '.join(missing)}")
    args = [pos(float(values[n])) if n.startswith("l_") else values.get(n, 1.0) for n in names]
    try:
        return getattr(hazard, "py_func", hazard)(*args)
    except OverflowError:  # exp beyond a double: no bound (skip_bound and thinning take every candidate)
        return math.inf


def rows_where(mask: np.ndarray) -> np.ndarray:
    """Indices where a 1-D mask is true (np.flatnonzero without its Python-level ravel)."""
    return mask.nonzero()[0]
