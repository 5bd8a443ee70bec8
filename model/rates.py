"""Turning annual rates and hazard ratios into events in a step.

Hazards are built in log space: a sum of log hazard ratios with one exp at the end, which is both the
multiplicative model of DESIGN §1 and cheap. Masks enter as arithmetic (np.where and boolean
assignment on random masks cost ~10x a multiply here, measured). An event with hazard h in a step of
dt years happens with probability 1 - exp(-h dt). Rare events are drawn by thinning: candidates at an
upper bound of the hazard, then each kept with probability p_i / p_bound, so the cost follows the
number of candidates rather than the population.
"""

from __future__ import annotations

import functools
import math

import numpy as np

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


TINY = F32(1e-6)


def flush_tiny(x: np.ndarray) -> None:
    """Set values below 1e-6 to 0 in place. State that decays geometrically would otherwise sink
    into subnormal floats, which make every later operation on the array ~100x slower (measured)."""
    np.multiply(x, x >= TINY, out=x)


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


def log_table(values, index: np.ndarray) -> np.ndarray:
    """log of a per-group parameter list (by ACE group, SES, age band) for each person."""
    return log_values(tuple(values))[index]


def log_by_group(group: np.ndarray, age=None, ses=None, ace=None) -> np.ndarray:
    """Sum of log ratios by age band, SES and ACE group for each person (one gather, see Population.group)."""
    return _group_table(age, ses, ace)[group]


class GroupFactors:
    """Per-person log factors that depend only on (age band, SES, ACE) and on parameters.

    Kept as arrays so a step reads them instead of rebuilding them; rebuilt when the parameters
    behind them change, and row by row when someone's group changes (newcomers, a birthday into the
    next age band).
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple, np.ndarray, np.ndarray, float]] = {}

    def get(self, name: str, group: np.ndarray, age=None, ses=None, ace=None) -> tuple[np.ndarray, float]:
        """(log factor of each person, the largest value any group can take)."""
        key = (age, ses, ace)  # parameter lists, compared with copies of those the entry was built from
        entry = self._entries.get(name)
        if entry is None or entry[0] != key:
            table = _group_table(age, ses, ace)
            entry = (tuple(None if v is None else list(v) for v in key), table, table[group], float(table.max()))
            self._entries[name] = entry
        return entry[2], entry[3]

    def update_rows(self, rows: np.ndarray, group: np.ndarray) -> None:
        for _, table, values, _ in self._entries.values():
            values[rows] = table[group[rows]]


def _group_table(age=None, ses=None, ace=None) -> np.ndarray:
    t = np.zeros((5, 3, 3), dtype=F32)
    for values, shape in ((age, (5, 1, 1)), (ses, (1, 3, 1)), (ace, (1, 1, 3))):
        if values is not None:
            t += np.log(np.maximum(np.asarray(values, dtype=F32), F32(1e-30))).reshape(shape)
    return t.reshape(-1)


def table(values, index: np.ndarray) -> np.ndarray:
    """A per-group parameter list looked up for each person."""
    return np.asarray(values, dtype=F32)[index]


def per_unit(hr: float, x: np.ndarray) -> np.ndarray:
    """A hazard ratio applied to a quantity x in [0, 1]: HR ** x (for small subsets)."""
    if hr == 1.0:
        return np.ones(np.shape(x), dtype=F32)
    return np.exp(log_hr(hr) * np.asarray(x, dtype=F32))


def when(mask: np.ndarray, hr: float) -> np.ndarray:
    """A hazard ratio applied where mask is true (arithmetic: np.where is slow on random masks)."""
    return F32(1.0) + F32(hr - 1.0) * np.asarray(mask)


def occurs(rng: np.random.Generator, hazard: np.ndarray, dt_years: float) -> np.ndarray:
    """Whether an event with the given annual hazard happens in the step (exact, one draw each)."""
    return rng.standard_exponential(np.shape(hazard), dtype=F32) < hazard * F32(dt_years)


THINNING_P = 0.02  # candidates drawn for at most ~2% of entries; entries above this go direct


def events(rng: np.random.Generator, log_hazard: np.ndarray, dt_years: float) -> np.ndarray:
    """Flat indices where an event happens, given log annual hazards (exact; cost ~ number of events).

    Entries whose step probability exceeds THINNING_P (few: people in care, with several risk factors)
    get a draw each. The rest are thinned: candidates come as a Bernoulli process at probability
    p_max <= THINNING_P (geometric gaps, no draw per person), each kept with probability p_i / p_max.
    """
    flat = log_hazard.reshape(-1)
    if flat.size == 0:
        return np.empty(0, dtype=np.int64)
    dt = F32(dt_years)
    log_cap = F32(math.log(-math.log1p(-THINNING_P) / dt_years))
    top = float(flat.max())
    if top > log_cap:
        high = rows_where(flat > log_cap)
        direct = high[rng.standard_exponential(high.size, dtype=F32) < np.exp(flat[high]) * dt]
        top = float(log_cap)
    else:
        high = direct = np.empty(0, dtype=np.int64)
    p_max = -math.expm1(-math.exp(top) * dt_years)
    cand = bernoulli_indices(rng, flat.size, p_max)
    p = -np.expm1(-np.exp(flat[cand]) * dt)
    keep = rng.random(cand.size, dtype=F32) * F32(p_max) < p
    if high.size:
        keep &= flat[cand] <= log_cap  # those were drawn directly
        return np.union1d(cand[keep], direct)
    return cand[keep]


def events_bounded(rng: np.random.Generator, n: int, log_bound: float, log_hazard_at, dt_years: float) -> np.ndarray:
    """Indices 0..n-1 where an event happens, evaluating hazards only at candidates (exact).

    ``log_bound`` must be >= every log hazard (a product of each factor's largest value); candidates
    come as a Bernoulli process at the bound's step probability and ``log_hazard_at(idx)`` gives the
    exact log hazards there; each is kept with probability p_i / p_bound. The cost follows the number
    of candidates, not n, which is what makes rare events cheap for large and small populations alike.
    """
    p_max = -math.expm1(-math.exp(min(float(log_bound), 50.0)) * dt_years)
    cand = bernoulli_indices(rng, n, p_max)
    if cand.size == 0:
        return cand
    # p = -expm1(-exp(log hazard) * dt), in place (negating dt instead of the product is exact)
    p = np.exp(log_hazard_at(cand))
    p *= F32(-dt_years)
    np.expm1(p, out=p)
    np.negative(p, out=p)
    return cand[rng.random(cand.size, dtype=F32) * F32(p_max) < p]


def rows_where(mask: np.ndarray) -> np.ndarray:
    """Indices where a 1-D mask is true: np.flatnonzero without its Python-level ravel (~4 us less a
    call, which adds up over the ~20 calls of a step at small populations)."""
    return mask.nonzero()[0]


def mean_of(x: np.ndarray) -> float:
    """float(x.mean()) for a 1-D array, bit for bit (the same sum and the same division), without
    np.mean's Python-level overhead (~3 us a call at 5,000 people)."""
    return float(x.dtype.type(np.add.reduce(x) / np.intp(x.size)))


def pos(x: float) -> float:
    """The part of a log factor that can raise a hazard (for bounds): max(x, 0)."""
    return x if x > 0 else 0.0


def bernoulli_indices(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    """Indices 0..n-1 each chosen independently with probability p."""
    if p <= 0.0:
        return np.empty(0, dtype=np.int64)
    if p >= 0.2 or n <= 50_000:  # dense: a draw per index is cheaper than gaps (measured)
        return rows_where(rng.random(n) < p)
    expected = n * p
    chunks, last = [], -1
    while last < n - 1:
        gaps = rng.geometric(p, size=int(expected + 6 * math.sqrt(expected) + 16))
        idx = last + np.cumsum(gaps)
        chunks.append(idx)
        last = int(idx[-1])
        expected = (n - 1 - last) * p
    idx = np.concatenate(chunks)
    return idx[idx < n]


def compete(rng: np.random.Generator, dt_years: float, *hazards: np.ndarray) -> np.ndarray:
    """Competing risks: 0 for no event, else 1 + which hazard happened.

    P(any) = 1 - exp(-sum h dt); given an event, it is hazard j with probability h_j / sum h.
    """
    total = np.array(hazards[0], dtype=F32)  # a copy; the same sum as adding every hazard to zeros
    for h in hazards[1:]:
        total += h
    out = np.zeros(total.shape, dtype=np.int8)
    hit = rows_where(occurs(rng, total, dt_years))
    if hit.size == 0:
        return out
    pick = rng.random(hit.size, dtype=F32) * total[hit]
    which = np.full(hit.size, len(hazards), dtype=np.int8)
    cum = np.zeros(hit.size, dtype=F32)
    for j, h in enumerate(hazards):
        # hazards are usually full arrays; np.broadcast_to (for scalars) costs ~10 us a call
        cum += (h if np.shape(h) == total.shape else np.broadcast_to(h, total.shape))[hit]
        which[(which == len(hazards)) & (pick < cum)] = j + 1
    out[hit] = which
    return out
