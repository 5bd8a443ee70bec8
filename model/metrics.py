"""The metric catalogue (names fixed by DESIGN §1) and how each is computed from the arrays.

Prevalences are shares of the living population at the end of a step. Flows (incidence, overdoses,
deaths) are counts in the step, or rates scaled to a year: a weekly count c in a population N gives
``c / N * 100,000 / dt_years`` per 100,000 per year.
"""

from __future__ import annotations

from dataclasses import dataclass

import mesa
import numpy as np
import pandas as pd

from agents.states import Care, Stage
from model.rates import mean_of


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
    Metric("mh_prevalence", "Any modelled mental-health disorder", "share of population", "share"),
    Metric("depression_prevalence", "Depression", "share of population", "share"),
    Metric("anxiety_prevalence", "Anxiety disorder", "share of population", "share"),
    Metric("ptsd_prevalence", "PTSD", "share of population", "share"),
    Metric("cooccurring_share", "People with OUD who have a disorder", "share of people with OUD", "share"),
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
    Metric("mean_degree", "Mean active ties", "ties", "count"),
)
METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in CATALOGUE)
BY_NAME = {m.name: m for m in CATALOGUE}


def _share(a: float, b: float) -> float:
    return float(a) / float(b) if b else 0.0


def compute(model) -> dict[str, float]:
    """Every metric for the model's current state and the flows of its last step.

    One pass of counts per array (no per-metric work): at small populations a step costs tens of
    microseconds, so each numpy call here shows up in the step time.
    """
    pop, f = model.population, model.flows
    n = pop.n
    dt = model.dt_years
    st = pop.stage
    any_mh = pop.any_mh
    n_misuse = np.count_nonzero(st == Stage.MISUSE.value)
    untreated = st == Stage.OUD.value
    treated = st == Stage.TREATMENT.value
    n_untreated = np.count_nonzero(untreated)
    n_treated = np.count_nonzero(treated)
    n_oud = n_untreated + n_treated
    n_mh = np.count_nonzero(any_mh)
    # OUD (in care or not) among people with a disorder
    mh_oud = np.count_nonzero((untreated | treated) & any_mh) if n_mh else 0
    person_years = f["oud_at_start"] * dt
    return {
        "oud_prevalence": _share(n_oud, n),
        "untreated_oud_prevalence": _share(n_untreated, n),
        "misuse_prevalence": _share(n_misuse + n_oud, n),
        "mh_prevalence": _share(n_mh, n),
        "depression_prevalence": _share(np.count_nonzero(pop.mh[0]), n),
        "anxiety_prevalence": _share(np.count_nonzero(pop.mh[1]), n),
        "ptsd_prevalence": _share(np.count_nonzero(pop.mh[2]), n),
        "cooccurring_share": _share(mh_oud, n_oud),
        "treatment_coverage": _share(n_treated, n_oud),
        "integrated_share": _share(np.count_nonzero(pop.care == Care.INTEGRATED.value), n_oud),
        "waitlist": float(np.count_nonzero(pop.waiting)),
        "incidence": _share(f["new_oud"], n) * 1e5 / dt,
        "overdoses": float(f["overdoses"]),
        "overdose_deaths": float(f["overdose_deaths"]),
        "overdose_death_rate": _share(f["overdose_deaths"], n) * 1e5 / dt,
        "oud_death_rate": _share(f["oud_deaths"], person_years) * 1e3,
        "mean_stigma": mean_of(pop.stigma),
        "isolated_share": _share(np.count_nonzero(pop.degree <= model.params.social.isolated_max_ties), n),
        "mean_loneliness": mean_of(pop.loneliness),
        "mean_degree": mean_of(pop.degree),
    }


class MetricCollector(mesa.DataCollector):
    """A mesa.DataCollector whose model reporters are the catalogue metrics, read from ``model.metrics``.

    Mesa's collect calls each reporter and deep-copies its value (~100 us a step for 20 metrics).
    The values here are Python floats computed once per step, which deepcopy returns unchanged, so
    appending them directly records the same data. Reporters added or replaced later, or agent
    reporters, fall back to Mesa's own collect.
    """

    def __init__(self) -> None:
        self._catalogue_reporters = {name: (lambda m, k=name: m.metrics[k]) for name in METRIC_NAMES}
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
