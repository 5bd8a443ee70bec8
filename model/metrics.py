"""The metric catalogue and how each is computed from the arrays (docs/ODD.md 3.3.9). The names are
fixed: the CLI, the files, the dashboard and the tests use them.

Prevalences are shares of the living population at the end of a step. Flows (incidence, overdoses,
deaths) are counts in the step, or rates scaled to a year: a weekly count c in a population N gives
``c / N * 100,000 / dt_years`` per 100,000 per year.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import mesa
import numpy as np
import pandas as pd
from numba import prange

from oudsim.agents.states import Care, Stage, with_oud
from oudsim.model import accounting
from oudsim.model.binding import bind
from oudsim.model.jit import njit, total
from oudsim.model.rates import per_parameters


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    unit: str
    kind: str  # "share", "count" or "rate"


CATALOGUE: tuple[Metric, ...] = (
    Metric("oud_prevalence", "OUD prevalence (in care or not)", "share of population", "share"),
    Metric("untreated_oud_prevalence", "Untreated OUD prevalence", "share of population", "share"),
    Metric("misuse_prevalence", "Opioid misuse or OUD", "share of population", "share"),
    Metric("mh_prevalence", "Any mental illness (depression, anxiety, PTSD or other)", "share of population", "share"),
    Metric("depression_prevalence", "Depression", "share of population", "share"),
    Metric("anxiety_prevalence", "Anxiety disorder", "share of population", "share"),
    Metric("ptsd_prevalence", "PTSD", "share of population", "share"),
    Metric("other_mi_prevalence", "Other mental illness", "share of population", "share"),
    Metric("cooccurring_share", "People with OUD who have a disorder", "share of people with OUD", "share"),
    Metric("depression_among_oud", "People with OUD who have depression", "share of people with OUD", "share"),
    Metric(
        "treatment_coverage", "People with OUD on medication or integrated care", "share of people with OUD", "share"
    ),
    Metric(
        "integrated_share", "People with OUD in integrated dual-diagnosis care", "share of people with OUD", "share"
    ),
    Metric("waitlist", "Waiting for an OUD treatment slot", "people", "count"),
    Metric("incidence", "New OUD", "per 100,000 per year", "rate"),
    Metric("overdoses", "Overdoses in the step", "events per step", "count"),
    Metric("overdose_deaths", "Overdose deaths in the step", "deaths per step", "count"),
    Metric("overdose_death_rate", "Overdose death rate", "per 100,000 per year", "rate"),
    Metric("oud_death_rate", "Deaths among people with OUD (all causes)", "per 1,000 person-years", "rate"),
    Metric("mean_stigma", "Mean community stigma", "score 0-1", "share"),
    Metric("isolated_share", "Isolated (at most isolated_max_ties ties)", "share of population", "share"),
    Metric("mean_loneliness", "Mean loneliness", "score 0-1", "share"),
    Metric("lonely_share", "Lonely (loneliness at or above social.lonely_threshold)", "share of population", "share"),
    Metric("mean_degree", "Mean active ties", "ties", "count"),
    Metric("early_remission_prevalence", "In early remission (under a year)", "share of population", "share"),
    Metric("sustained_remission_prevalence", "In sustained remission (a year or more)", "share of population", "share"),
    Metric("retention_180d", "Still in OUD care 180 days after admission", "share of admissions", "share"),
    Metric(
        "witnessed_overdose_death_share",
        "Overdose deaths with someone present (since week 0)",
        "share of overdose deaths",
        "share",
    ),
    Metric(
        "naloxone_carried",
        "People who use opioids or are in OUD care carrying naloxone",
        "share of those people",
        "share",
    ),
    Metric("cumulative_overdose_deaths", "Overdose deaths since week 0", "per 100,000", "count"),
    Metric("cumulative_oud_deaths", "Deaths of people with OUD, all causes, since week 0", "per 100,000", "count"),
    # Health economics of the step (model.accounting): amounts per person of the population.
    Metric("cost_medication", "Cost of medication for OUD", "US$ per person in the step", "cost"),
    Metric("cost_integrated", "Cost of integrated dual-diagnosis care", "US$ per person in the step", "cost"),
    Metric("cost_mh_care", "Cost of mental-health care", "US$ per person in the step", "cost"),
    Metric("cost_oud_health_care", "Excess health care of people with OUD", "US$ per person in the step", "cost"),
    Metric(
        "cost_overdose", "Cost of overdose response (EMS, emergency, hospital)", "US$ per person in the step", "cost"
    ),
    Metric("cost_naloxone", "Cost of naloxone kits handed out", "US$ per person in the step", "cost"),
    Metric("cost_societal", "Lost productivity and criminal justice", "US$ per person in the step", "cost"),
    Metric("cost_total", "Cost in the chosen perspective", "US$ per person in the step", "cost"),
    Metric("qalys_lived", "Quality-adjusted life lived", "QALYs per person in the step", "health"),
    Metric("life_years_lost", "Life-years lost to the step's deaths (discounted)", "years per person", "health"),
    Metric("qalys_lost", "QALYs lost to the step's deaths (discounted)", "QALYs per person", "health"),
    Metric("overdoses_per_100k", "Overdoses in the step", "per 100,000 people", "count"),
)
"""Every metric a run records: its name (a column of every frame and file), label, unit and kind."""
ECONOMIC_NAMES: tuple[str, ...] = accounting.METRICS  # filled by model.accounting, not by _metrics
METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in CATALOGUE)
BY_NAME = {m.name: m for m in CATALOGUE}
"""The catalogue's metrics by name."""


def label_in_words(name: str, params: Any = None) -> str:
    """A metric's label for people: a parameter named in it is replaced by its value.

    "Lonely (loneliness at or above social.lonely_threshold)" reads "Lonely (loneliness at or above
    0.5 on a 0–1 score)" with the default parameters (``params``: a Parameters tree).
    """
    import re

    from oudsim.model.parameters import Parameters

    p = params if params is not None else Parameters()
    social = p.social
    label = BY_NAME[name].label
    ties = int(social.isolated_max_ties)
    label = label.replace("isolated_max_ties ties", f"{ties} {'tie' if ties == 1 else 'ties'}")
    label = label.replace("social.lonely_threshold", f"{float(social.lonely_threshold):g} on a 0–1 score")
    if re.search(r"\b[a-z]+_[a-z_]+\b|\b[a-z]+\.[a-z_]+\b", label):  # a name left: a new label needs a rule here
        raise ValueError(f"metric label names a parameter: {label!r}")
    return label


# Where each metric goes in the array the compiled pass fills: its place in the catalogue, by name
# (``Slot.oud_prevalence``; compiled code reads the members as constants).
Slot = IntEnum("Slot", [(name, i) for i, name in enumerate(METRIC_NAMES)])


def compute(model) -> dict[str, float]:
    """Every metric for the model's current state and the flows of its last step (a pass of counts
    over the people, then the catalogue's formulas and the economics)."""
    counts, sums = count_people(model)
    args = _arguments(model)
    _metrics(
        *args, *_step_flows(model.flows), model.week, model.total_deaths, model.total_alone_deaths,
        model.total_oud_deaths,
    )  # fmt: skip
    values = dict(zip(METRIC_NAMES, args[0].tolist(), strict=True))
    values.update(accounting.step_values(model, counts))  # the economics slots, left unset by _metrics
    return values


def count_people(model) -> tuple[np.ndarray, np.ndarray]:
    """The people's counts (slots of ``Count``) and the sums of attitude, loneliness and ties, now."""
    *args, sustained = _count_arguments(model)
    _counts(*args, model.week - sustained)
    return args[0], args[1]


# Handed over at each call: the step's flows, the week, the overdose deaths since week 0.
_STEP_FLOWS = ("new_oud", "overdoses", "overdose_deaths", "oud_deaths", "oud_at_start")
_AT_CALL = (*_STEP_FLOWS, "week", "total_deaths", "total_alone_deaths", "total_oud_deaths")
_step_flows = operator.itemgetter(*_STEP_FLOWS)

YEAR_WEEKS = 52  # remission of a year or more is sustained (DSM-5: early 3-12 months, sustained 12+)
RETENTION_WEEKS = 26  # 180 days in care (E15's measure)
RETENTION_COHORTS = 13  # a quarter's admission cohorts make each estimate


@per_parameters
def _count_arguments(model) -> tuple:
    """The count kernel's arguments, and last the steps after which remission is sustained."""
    counts, sums = np.zeros(len(COUNTS), dtype=np.int64), np.zeros(3)  # filled in place at each call
    isolated_max = float(model.params.social.isolated_max_ties)
    lonely_at = np.float32(model.params.social.lonely_threshold)
    sustained = int(round(YEAR_WEEKS / model.params.simulation.dt_weeks))
    args = bind(
        _counts, model.shared(), at_call=("sustained_since",), counts=counts, sums=sums, isolated_max=isolated_max,
        lonely_at=lonely_at,
    )  # fmt: skip
    return (*args, sustained)


@per_parameters
def _arguments(model) -> tuple:
    out = np.empty(len(METRIC_NAMES))  # filled in place: an array returned from compiled code costs more
    counts, sums = _count_arguments(model)[:2]
    c = model.cohorts
    return bind(
        _metrics, model.shared(), at_call=_AT_CALL, out=out, c=counts, sums=sums, cohort_admitted=c.admitted,
        cohort_retained=c.retained, cohort_lag=c.lag,
    )  # fmt: skip


class CareCohorts:
    """Admissions to OUD care by step, and how many of each step's admissions are still in care
    ``lag`` steps (180 days) later, kept for the last ``window`` cohorts: retention at 180 days is the
    share of the cohorts admitted 180 days ago (a quarter's worth, so it is not one week's handful)
    who stayed in care all along (stage_since is the admission week while in treatment)."""

    def __init__(self, dt_weeks: int) -> None:
        self.lag = max(int(round(RETENTION_WEEKS / dt_weeks)), 1)
        self.size = self.lag + max(int(round(RETENTION_COHORTS / dt_weeks)), 1)
        self.admitted = np.zeros(self.size, dtype=np.int64)  # by step, ring
        self.retained = np.zeros(self.size, dtype=np.int64)  # still in care, counted ``lag`` steps on
        self.window_size = self.size - self.lag

    def admit(self, week: int, k: int) -> None:
        """People placed in care other than by the week's admissions (the initial care)."""
        self.admitted[week % self.size] += k

    def update(self, week: int, admissions: int, stage: np.ndarray, stage_since: np.ndarray) -> None:
        k = week % self.size
        self.admitted[k] = admissions
        self.retained[k] = _in_care_since(stage, stage_since, week - self.lag)


@njit(inline=True)
def _retention(admitted, retained, week, lag):
    """(still in care, admitted) for the cohorts admitted ``lag`` to ``size - 1`` steps ago (the ring
    holds the last ``size`` steps: admissions of each, and how many of the cohort ``lag`` steps
    before it were still in care)."""
    size = admitted.size
    kept = entered = 0
    for j in range(size - lag):
        kept += retained[(week - j) % size]  # counted in the newest steps
        entered += admitted[(week - lag - j) % size]  # for the cohorts admitted lag steps before them
    return kept, entered


@njit(threaded=True)
def _in_care_since(stage, stage_since, week):
    k = 0
    for i in prange(stage.size):
        k += (stage[i] == Stage.TREATMENT) & (stage_since[i] == week)
    return k


@njit(inline=True)
def _share(a, b):
    return a / b if b else 0.0


@njit
def _metrics(
    out, c, sums, stage, cohort_admitted, cohort_retained, cohort_lag, dt, new_oud, overdoses, overdose_deaths,
    oud_deaths, oud_at_start, week, total_deaths, total_alone_deaths, total_oud_deaths,
):  # fmt: skip
    """The catalogue into ``out``, each in its slot, from the people's counts ``c`` (slots of Count) and
    ``sums`` (prevalences are shares of the living population at the end of the step; flows are the
    step's counts, or rates scaled to a year)."""
    n_misuse, n_untreated, n_treated = float(c[Count.misuse]), float(c[Count.oud]), float(c[Count.treated])
    n = float(stage.size)
    n_oud = n_untreated + n_treated
    out[Slot.oud_prevalence] = _share(n_oud, n)
    out[Slot.untreated_oud_prevalence] = _share(n_untreated, n)
    out[Slot.misuse_prevalence] = _share(n_misuse + n_oud, n)
    out[Slot.mh_prevalence] = _share(float(c[Count.any_mh]), n)
    out[Slot.depression_prevalence] = _share(float(c[Count.depression]), n)
    out[Slot.anxiety_prevalence] = _share(float(c[Count.anxiety]), n)
    out[Slot.ptsd_prevalence] = _share(float(c[Count.ptsd]), n)
    out[Slot.other_mi_prevalence] = _share(float(c[Count.other_mi]), n)
    out[Slot.cooccurring_share] = _share(float(c[Count.oud_mh] + c[Count.treated_mh]), n_oud)
    out[Slot.depression_among_oud] = _share(float(c[Count.oud_depression]), n_oud)
    out[Slot.treatment_coverage] = _share(n_treated, n_oud)
    out[Slot.integrated_share] = _share(float(c[Count.integrated]), n_oud)
    out[Slot.waitlist] = float(c[Count.waiting])
    out[Slot.incidence] = _share(float(new_oud), n) * 1e5 / dt
    out[Slot.overdoses] = float(overdoses)
    out[Slot.overdose_deaths] = float(overdose_deaths)
    out[Slot.overdose_death_rate] = _share(float(overdose_deaths), n) * 1e5 / dt
    out[Slot.oud_death_rate] = _share(float(oud_deaths), oud_at_start * dt) * 1e3  # per person-year with OUD
    out[Slot.mean_stigma] = _share(sums[0], n)
    out[Slot.isolated_share] = _share(float(c[Count.isolated]), n)
    out[Slot.mean_loneliness] = _share(sums[1], n)
    out[Slot.lonely_share] = _share(float(c[Count.lonely]), n)
    out[Slot.mean_degree] = _share(sums[2], n)
    early = c[Count.remission] - c[Count.sustained]
    out[Slot.early_remission_prevalence] = _share(float(early), n)
    out[Slot.sustained_remission_prevalence] = _share(float(c[Count.sustained]), n)
    retained, admitted = _retention(cohort_admitted, cohort_retained, week, cohort_lag)
    out[Slot.retention_180d] = _share(float(retained), float(admitted))
    out[Slot.witnessed_overdose_death_share] = _share(float(total_deaths - total_alone_deaths), float(total_deaths))
    out[Slot.naloxone_carried] = _share(float(c[Count.kits]), float(c[Count.reached]))
    out[Slot.cumulative_overdose_deaths] = _share(float(total_deaths), n) * 1e5
    out[Slot.cumulative_oud_deaths] = _share(float(total_oud_deaths), n) * 1e5


# What the pass over the people counts (``count_people``; the metrics and the economics read it).
# ``*_mh``: of them, those with a disorder; ``sustained``: in remission a year or more.
COUNTS = (
    "none", "misuse", "oud", "treated", "remission", "sustained", "none_mh", "misuse_mh", "oud_mh", "treated_mh",
    "remission_mh", "sustained_mh", "any_mh", "depression", "anxiety", "ptsd", "other_mi", "oud_depression",
    "integrated", "medication", "mh_care", "waiting", "isolated", "lonely", "reached", "kits",
)  # fmt: skip
Count = IntEnum("Count", [(name, i) for i, name in enumerate(COUNTS)])


@njit(threaded=True)
def _counts(
    counts, sums, stage, stage_since, mh, any_mh, care, in_mh_care, waiting, degree, stigma, loneliness, naloxone,
    isolated_max, lonely_at, sustained_since,
):  # fmt: skip
    """``counts`` (slots of Count) and the sums of attitude, loneliness and ties, into their arrays.

    Integer counts by plain comparisons, split over threads (integer sums: the same in any order); the
    float sums in one ordered pass each. Few running counts a loop: with too many, the compiler gives
    up on vector code (measured: one loop of 17 counts ~55% slower than three)."""
    n = stage.size
    none = misuse = oud = treated = rem = rem_long = 0
    for i in prange(n):
        st = stage[i]
        none += st == Stage.NONE
        misuse += st == Stage.MISUSE
        oud += st == Stage.OUD
        treated += st == Stage.TREATMENT
        in_remission = st == Stage.REMISSION
        rem += in_remission
        rem_long += in_remission & (stage_since[i] <= sustained_since)
    none_mh = misuse_mh = oud_mh = treated_mh = rem_mh = rem_long_mh = 0
    for i in prange(n):
        st, d = stage[i], any_mh[i]
        none_mh += (st == Stage.NONE) & d
        misuse_mh += (st == Stage.MISUSE) & d
        oud_mh += (st == Stage.OUD) & d
        treated_mh += (st == Stage.TREATMENT) & d
        in_remission = (st == Stage.REMISSION) & d
        rem_mh += in_remission
        rem_long_mh += in_remission & (stage_since[i] <= sustained_since)
    n_mh = dep = anx = ptsd = other = dep_oud = 0
    for i in prange(n):
        n_mh += any_mh[i]
        dep += mh[0, i]
        anx += mh[1, i]
        ptsd += mh[2, i]
        other += mh[3, i]
        dep_oud += with_oud(stage[i]) & mh[0, i]
    n_int = n_med = n_mh_care = n_wait = n_iso = lonely = reached = kits = 0
    for i in prange(n):
        st, c = stage[i], care[i]
        n_int += c == Care.INTEGRATED
        n_med += c == Care.MEDICATION
        n_mh_care += in_mh_care[i] & (c != Care.INTEGRATED)
        n_wait += waiting[i]
        n_iso += degree[i] <= isolated_max
        lonely += loneliness[i] >= lonely_at
        r = (st == Stage.MISUSE) | (st == Stage.OUD) | (st == Stage.TREATMENT)
        reached += r
        kits += r & naloxone[i]
    counts[0], counts[1], counts[2], counts[3], counts[4], counts[5] = none, misuse, oud, treated, rem, rem_long
    counts[6], counts[7], counts[8], counts[9] = none_mh, misuse_mh, oud_mh, treated_mh
    counts[10], counts[11], counts[12], counts[13] = rem_mh, rem_long_mh, n_mh, dep
    counts[14], counts[15], counts[16], counts[17] = anx, ptsd, other, dep_oud
    counts[18], counts[19], counts[20], counts[21], counts[22] = n_int, n_med, n_mh_care, n_wait, n_iso
    counts[23], counts[24], counts[25] = lonely, reached, kits
    sums[0], sums[1], sums[2] = total(stigma), total(loneliness), total(degree)


def count_oud(stage: np.ndarray) -> int:
    """People with OUD, in care or not."""
    return int(_count_oud(stage))


@njit(threaded=True)
def _count_oud(stage):
    k = 0
    for i in prange(stage.size):
        k += with_oud(stage[i])
    return k


def _metric(name: str, model) -> float:
    """One catalogue metric of the model's current step (the reporters are partials of this, not
    lambdas, so that a model can be pickled)."""
    return model.metrics[name]


class MetricCollector(mesa.DataCollector):
    """A mesa.DataCollector whose model reporters are the catalogue metrics, read from ``model.metrics``.

    Mesa's collect calls each reporter and deep-copies its value (~100 us a step for 20 metrics).
    The values here are Python floats computed once per step, which deepcopy returns unchanged, so
    appending them directly records the same data. Reporters added or replaced later, or agent
    reporters, fall back to Mesa's own collect.
    """

    def __init__(self) -> None:
        self._catalogue_reporters = {name: functools.partial(_metric, name) for name in METRIC_NAMES}
        super().__init__(model_reporters=dict(self._catalogue_reporters))
        self._columns = [(name, self.model_vars[name]) for name in METRIC_NAMES]

    def collect(self, model) -> None:
        if (
            not self._validated
            or self.agent_reporters
            or self.agenttype_reporters
            or self.model_reporters != self._catalogue_reporters
        ):
            super().collect(model)
            return
        values = model.metrics
        self._collection_steps.append(model.time)
        for name, column in self._columns:
            column.append(values[name])


def subgroup_table(model, by: str) -> pd.DataFrame:
    """Prevalences by ACE group, SES or mental-health status, from the current state."""
    pop = model.population
    groups = {
        "ace": (pop.ace, ["0", "1-3", "4+"]),
        "ses": (pop.ses, ["low", "middle", "high"]),
        "mh": (pop.any_mh.astype(np.int8), ["no disorder", "disorder"]),
    }
    if by not in groups:
        raise ValueError(f"subgroup must be one of {sorted(groups)}, not {by!r}")
    key, labels = groups[by]
    st = pop.stage
    rows = []
    for g, label in enumerate(labels):
        sel = key == g
        n = int(sel.sum())
        oud = int(np.count_nonzero(pop.has_oud & sel))
        rows.append(
            {
                by: label,
                "people": n,
                "oud_prevalence": _share(oud, n),
                "misuse_prevalence": _share(np.count_nonzero(((st == Stage.MISUSE) | pop.has_oud) & sel), n),
                "mh_prevalence": _share(np.count_nonzero(pop.any_mh & sel), n),
                "treatment_coverage": _share(np.count_nonzero((st == Stage.TREATMENT) & sel), oud),
                "mean_loneliness": float(pop.loneliness[sel].mean()) if n else 0.0,
            }
        )
    return pd.DataFrame(rows).set_index(by)


def odds_ratio(model, group_a: int = 2, group_b: int = 0) -> float:
    """Odds of OUD in ACE group a (default 4+) relative to group b (default 0)."""
    pop = model.population
    oud = pop.has_oud

    def odds(g: int) -> float:
        sel = pop.ace == g
        k = np.count_nonzero(oud & sel)
        return k / max(np.count_nonzero(sel) - k, 1)

    b = odds(group_b)
    return odds(group_a) / b if b else float("inf")
