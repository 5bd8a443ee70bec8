"""Everyone's state as arrays (a struct of arrays): one row per person, one array per attribute.

Processes read and write these arrays for the whole population at once; ``agents.Person`` is a view
onto one row. A row is a place in the population (and a node of the network): when someone dies, a
newcomer takes the row, keeping the population size fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numba import literal_unroll

from oudsim.agents.states import AGE_BAND_EDGES, NEVER, Care, Stage
from oudsim.model.jit import njit
from oudsim.model.parameters import Parameters
from oudsim.model.transitions import append


@dataclass(eq=False)
class Population:
    # fixed at entry
    age: np.ndarray  # float32 years
    age_band: np.ndarray  # int8 index into agents.states.AGE_BANDS, kept in step with age
    group: np.ndarray  # intp (age band * 3 + SES) * 3 + ACE: one index for per-group parameter tables
    next_band_age: np.ndarray  # float32 age at which the next age band starts (inf in the last band)
    female: np.ndarray  # bool
    ses: np.ndarray  # int8, agents.states.SES
    ace: np.ndarray  # int8, agents.states.AceGroup
    family_support: np.ndarray  # bool
    trait_base: np.ndarray  # float32 (3, n): impulsivity, risk impairment, dysregulation without a disorder
    stigma_norm: np.ndarray  # float32: the attitude a person returns to without outside influence
    entry_week: np.ndarray  # int32: week the person entered
    # mental health
    mh: np.ndarray  # bool (4, n): depression, anxiety, PTSD, other mental illness (agents.states.DISORDERS)
    any_mh: np.ndarray  # bool: any of them active (kept in step with mh by the mental-health process)
    distress: np.ndarray  # float32 in [0, 1]: how far an active disorder has moved the traits
    # opioid use and neurobiology
    stage: np.ndarray  # int8, agents.states.Stage
    stage_since: np.ndarray  # int32 week the current stage began
    craving: np.ndarray  # float32 in [0, 1]
    # stigma
    stigma: np.ndarray  # float32 attitude toward OUD and mental illness, in [0, 1]
    internal_stigma: np.ndarray  # float32 in [0, 1]
    # care
    care: np.ndarray  # int8, agents.states.Care
    in_mh_care: np.ndarray  # bool
    waiting: np.ndarray  # bool: on the OUD treatment waitlist
    wait_since: np.ndarray  # int32 week
    # event stamps (week numbers; NEVER if none)
    last_event: np.ndarray
    last_overdose: np.ndarray
    lost_tolerance_until: np.ndarray
    # recovery
    after_care: np.ndarray  # bool: the current remission began on leaving OUD care (else natural remission)
    naloxone: np.ndarray  # bool: carries a naloxone kit
    # social summaries, refreshed every step from the network
    degree: np.ndarray  # float32 active ties
    using_ties: np.ndarray  # float32 active ties who misuse or have untreated OUD
    recovery_ties: np.ndarray  # float32 active ties in treatment or remission
    perceived_stigma: np.ndarray  # float32 mean attitude of one's ties
    loneliness: np.ndarray  # float32 in [0, 1]

    def __post_init__(self) -> None:
        # Every field becomes a row (or rows) of one 2-D block per dtype, so that copying newcomers into
        # rows hands compiled code a handful of arrays, not 31 (each costs ~0.1 us to hand over).
        self._blocks = _into_blocks(self)

    def __reduce__(self):
        # a copy or pickle is built afresh from the fields, so its fields are views of its own blocks
        return type(self), tuple(getattr(self, name) for name in FIELD_NAMES)

    @property
    def n(self) -> int:
        return self.stage.shape[0]

    # -- derived views (computed on demand, never stored) ---------------------------------
    @property
    def alive(self) -> np.ndarray:
        return self.stage != Stage.DECEASED.value

    def trait(self, k: int, increment: float, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Trait k (agents.states.TRAITS) = min(baseline + increment * distress, 1)."""
        return np.minimum(self.trait_base[k, rows] + np.float32(increment) * self.distress[rows], np.float32(1.0))

    @property
    def has_oud(self) -> np.ndarray:
        """OUD in care or not (the denominator of treatment coverage)."""
        return (self.stage == Stage.OUD.value) | (self.stage == Stage.TREATMENT.value)

    @property
    def active_use(self) -> np.ndarray:
        """Using opioids outside care: misuse or untreated OUD."""
        return (self.stage == Stage.MISUSE.value) | (self.stage == Stage.OUD.value)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def initial(cls, params: Parameters, rng: np.random.Generator) -> Population:
        """Draw the starting population from the input distributions (the input rows of docs/evidence.md)."""
        n = params.simulation.population
        d = params.demography
        age = stationary_ages(n, d.entry_age, d.max_age, d.mortality_per_1000, rng)
        pop = cls._draw(n, age, params, rng, week=0)
        _initial_use(pop, params, rng)
        return pop

    @classmethod
    def _draw(cls, n: int, age: np.ndarray, params: Parameters, rng: np.random.Generator, week: int) -> Population:
        d, mhp, st = params.demography, params.mental_health, params.stigma
        ses = rng.choice(3, size=n, p=d.ses_shares).astype(np.int8)
        ace = rng.choice(3, size=n, p=d.ace_shares).astype(np.int8)
        family = rng.random(n) < np.asarray(d.family_support_by_ace)[ace]
        # Initial disorders: prevalence as given overall, tilted toward higher ACE groups.
        w = np.asarray(mhp.ace_hr)[ace]
        w = w / w.mean() if w.mean() > 0 else np.ones(n)
        prev = np.asarray(mhp.initial_prevalence)[:, None] * w[None, :]
        mh = rng.random(prev.shape) < np.minimum(prev, 1.0)
        # Trait baselines: Beta with the configured mean, modest spread.
        m = mhp.trait_baseline
        a, b = max(m * 8.0, 1e-3), max((1 - m) * 8.0, 1e-3)
        trait_base = rng.beta(a, b, size=(3, n)).astype(np.float32)
        c = st.initial_concentration
        sm = min(max(st.initial_mean, 1e-4), 1 - 1e-4)
        norm = rng.beta(sm * c, (1 - sm) * c, size=n).astype(np.float32)
        z = lambda dt: np.zeros(n, dtype=dt)  # noqa: E731
        never = np.full(n, NEVER, dtype=np.int32)
        return cls(
            age=age.astype(np.float32),
            age_band=band_of(age),
            group=group_of(band_of(age), ses, ace),
            next_band_age=NEXT_BAND_AGE[band_of(age)],
            female=rng.random(n) < d.female_share,
            ses=ses,
            ace=ace,
            family_support=family,
            trait_base=trait_base,
            stigma_norm=norm,
            entry_week=np.full(n, week, dtype=np.int32),
            mh=mh,
            any_mh=mh.any(axis=0),
            distress=mh.any(axis=0).astype(np.float32),
            stage=z(np.int8),
            stage_since=np.full(n, week, dtype=np.int32),
            craving=z(np.float32),
            stigma=norm.copy(),
            internal_stigma=z(np.float32),
            care=z(np.int8),
            in_mh_care=z(bool),
            waiting=z(bool),
            wait_since=never.copy(),
            last_event=never.copy(),
            last_overdose=never.copy(),
            lost_tolerance_until=never.copy(),
            after_care=z(bool),
            naloxone=z(bool),
            degree=z(np.float32),
            using_ties=z(np.float32),
            recovery_ties=z(np.float32),
            perceived_stigma=norm.copy(),
            loneliness=z(np.float32),
        )

    def replace(self, rows: np.ndarray, new: Population, new_rows: np.ndarray, week: int) -> None:
        """Newcomers (rows ``new_rows`` of a population drawn from the same inputs) take ``rows``."""
        # One compiled call copies every field, block by block (numpy takes ~1 us a field, most steps).
        _copy_rows(self._pairs_with(new), rows, new_rows, self.entry_week, self.stage_since, week)

    def _pairs_with(self, new: Population) -> tuple:
        """(this block, the other population's block) for every dtype; kept while the other population
        is the same (a newcomer pool serves many steps)."""
        if getattr(self, "_pairs_source", None) is not new:
            if [b.dtype for b in self._blocks] != [b.dtype for b in new._blocks]:
                raise ValueError("newcomers must come from a population with the same fields")
            self._pairs = tuple(zip(self._blocks, new._blocks, strict=True))
            self._pairs_source = new
        return self._pairs

    def set_age_band(self, rows: np.ndarray) -> None:
        band = band_of(self.age[rows])
        self.age_band[rows] = band
        self.group[rows] = group_of(band, self.ses[rows], self.ace[rows])
        self.next_band_age[rows] = NEXT_BAND_AGE[band]

    def set_stage(self, rows: np.ndarray, stage: Stage, week: int) -> None:
        self.stage[rows] = stage
        self.stage_since[rows] = week

    def nbytes(self) -> int:
        return sum(getattr(self, f.name).nbytes for f in fields(self))


FIELD_NAMES = tuple(f.name for f in fields(Population))


def _into_blocks(pop: Population) -> tuple[np.ndarray, ...]:
    """One 2-D array per dtype holding every field of that dtype as rows (a 2-D field takes several);
    the fields become views of their rows. Returns the blocks, in order of first appearance."""
    names: dict[np.dtype, list[str]] = {}
    for name in FIELD_NAMES:
        names.setdefault(getattr(pop, name).dtype, []).append(name)
    blocks = []
    for dtype, members in names.items():
        arrays = [np.asarray(getattr(pop, name)) for name in members]
        block = np.empty((sum(1 if a.ndim == 1 else a.shape[0] for a in arrays), pop.n), dtype=dtype)
        r = 0
        for name, a in zip(members, arrays, strict=True):
            k = 1 if a.ndim == 1 else a.shape[0]
            block[r : r + k] = a.reshape(k, -1)
            setattr(pop, name, block[r] if a.ndim == 1 else block[r : r + k])
            r += k
        blocks.append(block)
    return tuple(blocks)


@njit
def _copy_rows(pairs, rows, src_rows, entry_week, stage_since, week):
    """dst[:, rows] = src[:, src_rows] for every (dst, src) pair of blocks; newcomers enter this week."""
    for pair in literal_unroll(pairs):
        dst, src = pair
        for k in range(dst.shape[0]):
            for j in range(rows.size):
                dst[k, rows[j]] = src[k, src_rows[j]]
    for j in range(rows.size):
        entry_week[rows[j]] = week
        stage_since[rows[j]] = week


@njit(inline=True)
def mark_deceased(
    i, stage, stage_since, care, in_mh_care, waiting, has_oud, died, dead_rows, table, count, uid, week,
):  # fmt: skip
    """The person in row ``i`` dies: out of every kind of care and queue, stage deceased, the change
    logged (model.transitions), the row added to ``dead_rows`` (replaced at the end of the step).
    ``died`` counts the step's deaths, and those of people with OUD. Compiled processes call this as
    they find the deaths."""
    append(table, count, uid, i, stage[i], Stage.DECEASED, week)
    k = died[0]
    dead_rows[k] = i
    died[0] = k + 1
    died[1] += has_oud[stage[i]] > 0
    stage[i] = Stage.DECEASED
    stage_since[i] = week
    care[i] = Care.NONE
    in_mh_care[i] = False
    waiting[i] = False


NEXT_BAND_AGE = np.array([*AGE_BAND_EDGES, np.inf], dtype=np.float32)


class NewcomerPool:
    """Young adults drawn in batches from the same inputs, handed out as people die.

    Drawing one batch every few steps costs far less than drawing a handful every step; draws are
    independent, so who gets which pre-drawn newcomer changes nothing in distribution.
    """

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self._pool: Population | None = None
        self._next = 0
        self._params: Parameters | None = None

    def take(self, k: int, params: Parameters, rng: np.random.Generator) -> tuple[Population, np.ndarray]:
        if self._pool is None or params is not self._params or self._next + k > self._pool.n:
            size = max(self.batch, k)
            age = np.full(size, params.demography.entry_age, dtype=np.float32)
            self._pool, self._next, self._params = Population._draw(size, age, params, rng, week=0), 0, params
            self._index = np.arange(size)
        idx = self._index[self._next : self._next + k]
        self._next += k
        return self._pool, idx


def stationary_ages(
    n: int, entry_age: float, max_age: float, per_1000: list[float], rng: np.random.Generator
) -> np.ndarray:
    """Ages of a population that is already steady under the model's own demography: people enter at
    ``entry_age`` and die at the life table's rates (per 1,000 by age band) or at ``max_age``, so the
    share alive at age a is the survival S(a) = exp(-integral of the death rate from entry_age to a).
    Drawn by inverting S's cumulative integral on a grid of a hundredth of a year (the age structure
    then holds over a long run instead of drifting toward it)."""
    h = 0.01
    grid = np.arange(entry_age, max_age, h)
    rate = np.asarray(per_1000, dtype=float)[band_of(grid + h / 2)] / 1000.0
    survival = np.exp(-np.concatenate([[0.0], np.cumsum(rate * h)[:-1]]))
    cdf = np.cumsum(survival)
    cell = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
    age = grid[np.minimum(cell, grid.size - 1)] + rng.random(n) * h
    return np.minimum(age, np.nextafter(np.float32(max_age), np.float32(0))).astype(np.float32)


def band_of(age: np.ndarray) -> np.ndarray:
    """Age band of each age (a few comparisons: cheaper than a search)."""
    band = np.zeros(age.shape, dtype=np.int8)
    for edge in AGE_BAND_EDGES:
        band += age >= edge
    return band


def group_of(band: np.ndarray, ses: np.ndarray, ace: np.ndarray) -> np.ndarray:
    return (band.astype(np.intp) * 3 + ses) * 3 + ace


def _initial_use(pop: Population, params: Parameters, rng: np.random.Generator) -> None:
    """Starting opioid-use stages, drawn with the same risk factors the dynamics use."""
    ini, use = params.initial, params.use
    w = np.asarray(use.ace_hr)[pop.ace] * np.asarray(use.age_hr)[pop.age_band]
    w = w * np.where(pop.any_mh, ini.mh_risk_weight, 1.0)
    w = w / w.mean()
    p_oud = np.minimum(ini.oud_prevalence * w, 1.0)
    p_mis = np.minimum(ini.misuse_prevalence * w, 1.0 - p_oud)
    p_rem = np.minimum(ini.remission_prevalence * w, 1.0 - p_oud - p_mis)
    u = rng.random(pop.n)
    stage = np.full(pop.n, Stage.NONE, dtype=np.int8)
    stage[u < p_oud + p_mis + p_rem] = Stage.REMISSION
    stage[u < p_oud + p_mis] = Stage.MISUSE
    stage[u < p_oud] = Stage.OUD
    pop.stage[:] = stage
    # Craving reflects time in use: high in OUD, lower in misuse and remission.
    base = np.array([0.0, 0.2, 0.6, 0.4, 0.3, 0.0], dtype=np.float32)[stage]
    noise = (0.1 * rng.standard_normal(pop.n)).astype(np.float32) * (base > 0)
    pop.craving[:] = np.clip(base + noise, 0.0, 1.0)
    # Stage stamps spread over the past so that no cohort leaves at once.
    pop.stage_since[:] = -rng.integers(0, 260, size=pop.n).astype(np.int32)


__all__ = ["Population", "Care", "Stage"]
