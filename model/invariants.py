"""What must hold between any two processes of a step: checked after each process when a model is built
with ``check_invariants=True`` (OUDModel._advance_observed), burn-in included. For tests and debugging:
every check reads the whole state (vectorised numpy), several times a step.

Each invariant is a small function of the model and the process just run, listed in CHECKS in the
order they run; it returns None when it holds, or what is wrong (a few offending rows and values).
``check`` raises InvariantError naming the process, the invariant and that detail. The checks only
read the model (they keep one count per model outside it, for care_within_capacity): a run with them
is bit-identical to one without (tests/test_invariants.py).

What the code guarantees, and so what is asserted (see each function for where it comes from):
  population_size           every per-person array has one entry per person, the size never changes
  stage_codes               stage and care codes are valid Stage and Care values
  deceased_until_replaced   DECEASED only for the step's recorded deaths, none after demography
  care_matches_stage        in OUD care (medication or integrated) exactly when in treatment
  waiting_only_untreated    on the waitlist only with untreated OUD (stage OUD)
  care_within_capacity      OUD care within its slots, mental-health care admitting only into free slots
  floats_finite             every float field finite (next_band_age may be inf: the last band)
  scores_in_unit_interval   attitudes, craving, loneliness, distress, traits in [0, 1]
  tie_summaries             tie counts >= 0, using + recovery ties <= ties, ties = the store's counts
  any_mh_matches_mh         any_mh is "any of the four categories"
  age_and_band              ages in range, age band, group and next band age in step with age
  tie_store                 the tie store's counts and entries in step with the active flags
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np

from oudsim.agents.population import FIELD_NAMES, NEXT_BAND_AGE, band_of, group_of
from oudsim.agents.states import DISORDERS, TRAITS, Care, Stage
from oudsim.model.processes import SCHEDULE
from oudsim.model.processes.treatment import slots

__all__ = ["InvariantError", "check", "CHECKS", "PROCESSES"]


class InvariantError(AssertionError):
    """An invariant of the model's state does not hold after a process."""


PROCESSES = tuple(p.__name__.rsplit(".", 1)[-1] for p in SCHEDULE)  # the names ``after`` takes
_AT = {name: i for i, name in enumerate(PROCESSES)}

STAGES = np.array([s.value for s in Stage], dtype=np.int64)
CARES = np.array([c.value for c in Care], dtype=np.int64)
SCORES = (
    "craving", "stigma", "stigma_norm", "internal_stigma", "perceived_stigma", "loneliness", "distress", "trait_base",
)  # fmt: skip
TWO_D = {"mh": len(DISORDERS), "trait_base": len(TRAITS)}  # (rows, n): one row per disorder or trait
# Newcomers enter at demography.entry_age, which the parameters allow from 12; initial ages start there.
YOUNGEST = 12.0


def check(m, after: str) -> None:
    """Raise InvariantError if any invariant in CHECKS is broken after process ``after`` (a name in
    PROCESSES; the state between steps, or of a freshly built model, is the state after
    "demography")."""
    if after not in _AT:
        raise ValueError(f"after={after!r}: expected one of the processes {', '.join(PROCESSES)}")
    for invariant in CHECKS:
        problem = invariant(m, after)
        if problem is not None:
            raise InvariantError(f"after {after}: invariant {invariant.__name__} broken: {problem}")
    _remember(m)


def _from(after: str, process: str) -> bool:
    """Whether ``after`` is ``process`` or a later process of the step."""
    return _AT[after] >= _AT[process]


def _show(rows: np.ndarray, *values: tuple[str, np.ndarray]) -> str:
    """A few offending rows (and their values), and how many there are."""
    rows = np.asarray(rows).ravel()
    few = rows[:5]
    text = f"rows {few.tolist()}" + (f" ({rows.size} in all)" if rows.size > few.size else "")
    for name, v in values:
        text += f", {name} {np.asarray(v)[few].tolist()}"
    return text


def _where(bad: np.ndarray, *values: tuple[str, np.ndarray]) -> str | None:
    """None if no entry of ``bad`` is set; else the first offending rows and their values."""
    if not bad.any():
        return None
    return _show(np.flatnonzero(bad), *values)


# -- the invariants ---------------------------------------------------------------------------


def population_size(m, after: str) -> str | None:
    """Every population array has one entry per person (the 2-D ones a column each), as do the model's
    per-person arrays, and the size is the one the model was built with."""
    pop, n = m.population, m.population.n
    if n != m.base_params.simulation.population:
        return f"{n} people, built with simulation.population = {m.base_params.simulation.population}"
    wrong = []
    for name in FIELD_NAMES:
        shape = getattr(pop, name).shape
        if shape != ((TWO_D[name], n) if name in TWO_D else (n,)):
            wrong.append(f"population.{name} has shape {shape}")
    for name in ("uid", "recent", "dead_rows"):
        if getattr(m, name).shape != (n,):
            wrong.append(f"model.{name} has shape {getattr(m, name).shape}")
    if m.network.n_active.shape != (n,) or m.network.indptr.shape != (n + 1,):
        wrong.append(f"network has {m.network.n_active.shape[0]} people")
    return f"expected {n} people: " + "; ".join(wrong) if wrong else None


def stage_codes(m, after: str) -> str | None:
    """Stage and care codes are valid Stage and Care values (one stage each: the array holds one code a
    person)."""
    pop = m.population
    bad = _where(~np.isin(pop.stage, STAGES), ("stage", pop.stage))
    if bad is not None:
        return f"stage codes outside {STAGES.tolist()}: {bad}"
    bad = _where(~np.isin(pop.care, CARES), ("care", pop.care))
    return f"care codes outside {CARES.tolist()}: {bad}" if bad is not None else None


def deceased_until_replaced(m, after: str) -> str | None:
    """Only this step's recorded deaths are DECEASED (rows m.dead_rows[:m.died[0]], each once): deaths
    are marked as overdose and demography find them (agents.population.mark_deceased, which records
    the row, and which neither kernel calls twice for a row: overdose visits rows once, demography skips
    the deceased), and OUDModel.replace_deceased, at the end of demography, gives every such row to a
    newcomer and resets the count. So after demography no one is DECEASED and no death is pending;
    between overdose and demography the deceased are exactly the recorded rows, out of every care."""
    pop = m.population
    k, k_oud = int(m.died[0]), int(m.died[1])
    dead = pop.stage == Stage.DECEASED.value
    if after == "demography":
        if k != 0:
            return f"{k} deaths still pending replacement (m.died[0]) after replacement"
        bad = _where(dead, ("stage", pop.stage))
        return f"DECEASED after replacement: {bad}" if bad is not None else None
    if not 0 <= k_oud <= k <= pop.n:
        return f"death counts m.died = {[k, k_oud]} (expected 0 <= with OUD <= deaths <= {pop.n})"
    recorded = m.dead_rows[:k]
    outside = (recorded < 0) | (recorded >= pop.n)
    if outside.any():
        return f"recorded death rows outside [0, {pop.n}): {recorded[outside][:5].tolist()}"
    marked = np.zeros(pop.n, dtype=np.int64)
    np.add.at(marked, recorded, 1)
    bad = _where(marked > 1, ("times recorded", marked))
    if bad is not None:
        return f"deaths recorded twice: {bad}"
    bad = _where(dead != (marked == 1), ("stage", pop.stage), ("recorded", marked))
    if bad is not None:
        return f"DECEASED rows and the step's recorded deaths (m.dead_rows[:{k}]) differ: {bad}"
    bad = _where(dead & pop.in_mh_care, ("in_mh_care", pop.in_mh_care))
    return f"deceased still in mental-health care: {bad}" if bad is not None else None


def care_matches_stage(m, after: str) -> str | None:
    """In OUD care (medication or integrated) exactly when in Stage.TREATMENT, and never in integrated
    care and mental-health care at once. Every change keeps the pair together: the initial care
    (OUDModel._initial_care), admission (treatment._admission), leaving care (treatment._leave_and_seek),
    the return to the queue when capacity is cut (treatment._admit), death (mark_deceased: care NONE)
    and newcomers (care NONE, stage NONE). Admission to integrated care frees the person's
    mental-health slot, and no one in integrated care seeks mental-health care (treatment._mh_care)."""
    pop = m.population
    in_care = pop.care != Care.NONE.value
    treated = pop.stage == Stage.TREATMENT.value
    bad = _where(in_care != treated, ("stage", pop.stage), ("care", pop.care))
    if bad is not None:
        return f"care set without treatment, or treatment without care: {bad}"
    both = (pop.care == Care.INTEGRATED.value) & pop.in_mh_care
    bad = _where(both, ("care", pop.care), ("in_mh_care", pop.in_mh_care))
    return f"in integrated care and mental-health care at once: {bad}" if bad is not None else None


def waiting_only_untreated(m, after: str) -> str | None:
    """On the OUD waitlist only with untreated OUD (Stage.OUD). This is what the code guarantees, a
    little more than "with OUD": only people in Stage.OUD join the queue (treatment._leave_and_seek; one
    who drops out of care that step is OUD by the process's end), those sent back when capacity is cut
    become OUD (treatment._admit), and every way out of Stage.OUD clears the flag: admission to
    treatment (treatment._admission), natural remission (use._use, REMIT) and death (mark_deceased)."""
    pop = m.population
    bad = _where(pop.waiting & (pop.stage != Stage.OUD.value), ("stage", pop.stage))
    return f"waiting without untreated OUD: {bad}" if bad is not None else None


# The mental-health care count at the last check of each model, with its week (see below).
_MH_COUNT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _remember(m) -> None:
    _MH_COUNT[m] = (m.week, int(np.count_nonzero(m.population.in_mh_care)))


def care_within_capacity(m, after: str) -> str | None:
    """From the treatment process on: medication and integrated care within their slots
    (treatment.slots), and mental-health care within its slots or, after they were cut, no larger than
    before treatment ran.

    Slots can change at the start of any step (an intervention or a slider sets new parameters), and
    only the treatment process acts on them, so before it runs a step's counts may exceed the new
    slots. In treatment._admit, a service over capacity sends its newest admissions back to the queue
    (down to its slots) before anyone is admitted, and admission fills free slots only: afterwards
    both OUD services are within their slots, and overdose and demography only take people out.
    Mental-health care (treatment._mh_care) admits only into free slots but sends no one out: after a
    cut its count can stay above the slots until exits bring it down. So its count is checked against
    max(slots, its count at an earlier check in the same step), or the slots alone if there was none."""
    if not _from(after, "treatment"):
        return None
    pop = m.population
    cap_med, cap_int, cap_mh = slots(m)
    n_med = int(np.count_nonzero(pop.care == Care.MEDICATION.value))
    n_int = int(np.count_nonzero(pop.care == Care.INTEGRATED.value))
    n_mh = int(np.count_nonzero(pop.in_mh_care))
    for kind, n_in, cap in ((Care.MEDICATION, n_med, cap_med), (Care.INTEGRATED, n_int, cap_int)):
        if n_in > cap:
            rows = np.flatnonzero(pop.care == kind.value)
            newest = rows[np.argsort(-pop.stage_since[rows], kind="stable")]  # whom treatment would send back
            since = ("stage_since", pop.stage_since)
            return f"{n_in} people in {kind.name.lower()} care, {cap} slots; newest: " + _show(newest, since)
    week, before = _MH_COUNT.get(m, (None, 0))
    limit = max(cap_mh, before) if week == m.week else cap_mh
    if n_mh > limit:
        more = f" (and {before} earlier this step)" if week == m.week else ""
        return f"{n_mh} people in mental-health care, {cap_mh} slots{more}"
    return None


def floats_finite(m, after: str) -> str | None:
    """Every float field of the population is finite (next_band_age is inf in the last band by design;
    age_and_band checks it)."""
    pop = m.population
    for name in FIELD_NAMES:
        a = getattr(pop, name)
        if a.dtype.kind != "f" or name == "next_band_age":
            continue
        if not np.isfinite(a).all():
            bad = ~np.isfinite(a)
            rows = np.flatnonzero(bad.any(axis=0) if a.ndim == 2 else bad)
            return f"population.{name} not finite: " + _show(rows, (name, a if a.ndim == 1 else a.T))
    return None


def scores_in_unit_interval(m, after: str) -> str | None:
    """Attitudes (stigma, its norm, internalised and perceived stigma), craving, loneliness, distress and
    the trait baselines lie in [0, 1]: each process clamps or moves them toward values in [0, 1]."""
    pop = m.population
    for name in SCORES:
        a = getattr(pop, name)
        out = (a < 0) | (a > 1)
        if out.any():
            rows = np.flatnonzero(out.any(axis=0) if a.ndim == 2 else out)
            return f"population.{name} outside [0, 1]: " + _show(rows, (name, a if a.ndim == 1 else a.T))
    return None


def tie_summaries(m, after: str) -> str | None:
    """Counts of ties (degree, ties using, ties in recovery) are >= 0, and ties using plus ties in
    recovery are at most all ties (social._refresh counts them over the same active ties, and using and
    recovering are disjoint stages). The counts are refreshed from the network in the social process,
    and ties change only there; newcomers enter with the newcomer pool's zero counts and are counted at
    the next refresh. So degree equals the tie store's count of active ties for everyone from social
    to overdose, and for everyone but that step's newcomers after demography and before social (the
    newcomers of the step before, then)."""
    pop, net = m.population, m.network
    deg, using, recovery = pop.degree, pop.using_ties, pop.recovery_ties
    for name, a in (("degree", deg), ("using_ties", using), ("recovery_ties", recovery)):
        bad = _where(a < 0, (name, a))
        if bad is not None:
            return f"negative {name}: {bad}"
    bad = _where(using + recovery > deg, ("using_ties", using), ("recovery_ties", recovery), ("degree", deg))
    if bad is not None:
        return f"more ties using or in recovery than ties: {bad}"
    stale = np.zeros(pop.n, dtype=bool)
    if after == "demography":
        stale = pop.entry_week == m.week
    elif not _from(after, "social"):
        stale = pop.entry_week == m.week - 1
    bad = _where((deg != net.n_active) & ~stale, ("degree", deg), ("active ties", net.n_active))
    return f"degree differs from the network's count of active ties: {bad}" if bad is not None else None


def any_mh_matches_mh(m, after: str) -> str | None:
    """any_mh is "any of the four categories active". The mental-health process sets it from mh at the
    end of its pass, nothing else writes mh, and newcomers come with both drawn together; so it holds
    after every process, not only after mental_health."""
    pop = m.population
    bad = _where(pop.any_mh != pop.mh.any(axis=0), ("any_mh", pop.any_mh), ("mh", pop.mh.T))
    return f"any_mh differs from mh.any(axis=0): {bad}" if bad is not None else None


def age_and_band(m, after: str) -> str | None:
    """The living are aged from the youngest entry age up to the life table's closing age
    (demography.max_age, at which demography ends every life; a step's slack for a closing age
    lowered mid-run, people above it live until demography runs); the age band is the age's band
    (agents.population.band_of), and the group index and the age at which the next band starts follow
    the band (demography moves all three together at a birthday, newcomers are drawn consistent)."""
    pop = m.population
    lo, hi = YOUNGEST, max(m.params.demography.max_age, m.base_params.demography.max_age) + m.dt_years
    living = pop.stage != Stage.DECEASED.value
    bad = _where(living & ((pop.age < lo) | (pop.age >= hi)), ("age", pop.age))
    if bad is not None:
        return f"age outside [{lo:g}, {hi:.2f}): {bad}"
    bad = _where(pop.age_band != band_of(pop.age), ("age", pop.age), ("age_band", pop.age_band))
    if bad is not None:
        return f"age band does not match age: {bad}"
    next_age = pop.next_band_age
    bad = _where(next_age != NEXT_BAND_AGE[pop.age_band], ("age_band", pop.age_band), ("next_band_age", next_age))
    if bad is not None:
        return f"next_band_age does not match the age band: {bad}"
    bad = _where(pop.group != group_of(pop.age_band, pop.ses, pop.ace), ("group", pop.group))
    return f"group index does not match age band, SES and ACE: {bad}" if bad is not None else None


def tie_store(m, after: str) -> str | None:
    """The network's tie store is in step with its active flags: each person's count of active ties
    (n_active) is the number of active ties they are an end of, and each tie's two entries hold the
    other end while it is active and n (no one) while it is not (model.network.TieNetwork, switch_tie).
    TieNetwork has no consistency method of its own; tests/test_network.py checks the same by hand."""
    net = m.network
    count = np.bincount(net.u[net.active], minlength=net.n) + np.bincount(net.v[net.active], minlength=net.n)
    bad = _where(net.n_active != count, ("n_active", net.n_active), ("active ties", count))
    if bad is not None:
        return f"n_active differs from the active flags: {bad}"
    for pos, other in ((net.pos_uv, net.v), (net.pos_vu, net.u)):
        expected = np.where(net.active, other, net.n)
        wrong = np.flatnonzero(net.active_neighbour[pos] != expected)
        if wrong.size:
            return f"entries of ties {wrong[:5].tolist()} ({wrong.size} in all) do not match their active flags"
    return None


CHECKS: tuple[Callable[..., str | None], ...] = (
    population_size,  # first: the others assume every array has n entries
    stage_codes,
    deceased_until_replaced,
    care_matches_stage,
    waiting_only_untreated,
    care_within_capacity,
    floats_finite,
    scores_in_unit_interval,
    tie_summaries,
    any_mh_matches_mh,
    age_and_band,
    tie_store,
)
