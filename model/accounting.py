"""Health economics of a run: what each step costs, the quality-adjusted life lived in it, and the life
lost to its deaths (docs/ODD.md 3.3.10). Nothing here changes the dynamics.

Per step, each as an amount per person of the population (N people, a step of w weeks, y = w/52 years):

    cost of a service   = weekly cost x people in it x w / N           (medication care, integrated care,
                                                                         mental-health care, and the excess
                                                                         health care of everyone with OUD)
    cost of overdoses   = [non-fatal x (ems_share x EMS + ed_share x ED + hospital_share x stay)
                           + fatal x fatal_ems_share x EMS] / N
    cost of naloxone    = kits handed out x kit cost / N
    societal cost       = (untreated OUD x societal_untreated + in care x societal_treated) x w / N
    QALYs lived         = sum over people of utility(state) x mh_utility_factor^(disorder) x y / N
    life-years lost     = sum over deaths of A(LE(age at death)) / N
    QALYs lost          = life-years lost x utility_no_oud

where LE is the remaining life expectancy of the life table and A(L) the discounted years of a remaining
life of L years (model.economics.annuity_years). Over a horizon, the present value of a stream is its
steps discounted to week 0 (``horizon_outcomes``); a scenario's health is QALYs lived minus QALYs lost,
so a death counts with the life its person would have had, beyond the horizon too (the population is
kept at N: a death's place is taken by a newcomer, whose life is counted as well).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from oudsim.model.parameters import Economics

# The states quality of life is weighed by (each with or without an active mental-health disorder).
STATES = ("no_oud", "misuse", "untreated_oud", "in_care", "early_remission", "sustained_remission")
LIFE_TABLE_AGES = np.arange(20.0, 91.0, 10.0)  # ages of economics.life_expectancy
PER = 100_000  # outcomes over a horizon are per 100,000 people of the population
YEAR_WEEKS = 52  # remission of a year or more is sustained (as in model.metrics)

COST_SERVICES = (
    "cost_medication",
    "cost_integrated",
    "cost_mh_care",
    "cost_oud_health_care",
    "cost_overdose",
    "cost_naloxone",
)
METRICS = (
    *COST_SERVICES, "cost_societal", "cost_total", "qalys_lived", "life_years_lost", "qalys_lost", "overdoses_per_100k"
)  # fmt: skip


def state_utilities(e: Economics) -> tuple[float, ...]:
    """Utility by state of STATES, without a disorder."""
    return (
        e.utility_no_oud, e.utility_misuse, e.utility_untreated_oud, e.utility_in_care, e.utility_early_remission,
        e.utility_sustained_remission,
    )  # fmt: skip


def life_expectancy(e: Economics, age: np.ndarray) -> np.ndarray:
    """Remaining life expectancy at each age: the life table interpolated, held flat beyond its ends."""
    return np.interp(np.asarray(age, dtype=float), LIFE_TABLE_AGES, np.asarray(e.life_expectancy, dtype=float))


def life_lost(e: Economics, ages: np.ndarray) -> tuple[float, float]:
    """(life-years, QALYs) lost by deaths at these ages, each discounted over the life it ends."""
    from oudsim.model.economics import annuity_years

    if len(ages) == 0:
        return 0.0, 0.0
    years = float(np.sum(annuity_years(life_expectancy(e, ages), e.discount_rate)))
    return years, years * e.utility_no_oud


def step_values(model, counts: np.ndarray | None = None) -> dict[str, float]:
    """This step's costs and health, per person (the economics part of model.metrics.compute), from
    the people's counts (``model.metrics.count_people``; counted here if not given)."""
    from oudsim.model.metrics import Count, count_people

    e = model.params.economics
    pop = model.population
    w = model.params.simulation.dt_weeks
    n = float(pop.n)
    c = (count_people(model)[0] if counts is None else counts).tolist()  # Python ints: a few values
    med, integrated, mh_care = c[Count.medication], c[Count.integrated], c[Count.mh_care]
    untreated, treated = c[Count.oud], c[Count.treated]
    # People by state of STATES, in all and with a disorder (whose utility is mh_utility_factor times).
    in_all = (
        c[Count.none], c[Count.misuse], c[Count.oud], c[Count.treated], c[Count.remission] - c[Count.sustained],
        c[Count.sustained],
    )  # fmt: skip
    with_mh = (
        c[Count.none_mh], c[Count.misuse_mh], c[Count.oud_mh], c[Count.treated_mh],
        c[Count.remission_mh] - c[Count.sustained_mh], c[Count.sustained_mh],
    )  # fmt: skip
    keep = 1.0 - e.mh_utility_factor
    lived = sum(u * (k - k_mh * keep) for u, k, k_mh in zip(state_utilities(e), in_all, with_mh, strict=True))
    f = model.flows
    fatal = float(f["overdose_deaths"])
    nonfatal = float(f["overdoses"]) - fatal
    costs = {
        "cost_medication": med * e.medication_care_per_week * w,
        "cost_integrated": integrated * e.integrated_care_per_week * w,
        "cost_mh_care": mh_care * e.mh_care_per_week * w,
        "cost_oud_health_care": (untreated + treated) * e.oud_health_care_per_week * w,
        "cost_overdose": nonfatal * (e.ems_share * e.ems_per_call + e.ed_share * e.ed_per_visit)
        + nonfatal * e.hospital_share * e.hospital_per_stay
        + fatal * e.fatal_ems_share * e.ems_per_call,
        "cost_naloxone": float(f["kits_handed_out"]) * e.naloxone_kit,
    }
    societal = (untreated * e.societal_untreated_per_week + treated * e.societal_treated_per_week) * w
    health = sum(costs.values())
    out = {k: v / n for k, v in costs.items()}
    out["cost_societal"] = societal / n
    out["cost_total"] = (health + (societal if e.perspective == "societal" else 0.0)) / n
    out["qalys_lived"] = lived * model.dt_years / n
    out["life_years_lost"] = f["life_years_lost"] / n
    out["qalys_lost"] = f["qalys_lost"] / n
    out["overdoses_per_100k"] = float(f["overdoses"]) / n * PER
    return out


# -- over a horizon -------------------------------------------------------------------------------

OUTCOMES = ("cost", "cost_health_sector", "cost_societal", "qalys", "life_years_lost", "overdoses", "deaths")


def horizon_outcomes(timeseries: pd.DataFrame, discount_rate: float) -> pd.DataFrame:
    """Per (scenario, replicate): the present values over the horizon (steps after week 0) of costs
    and QALYs, life-years lost, and the overdoses and overdose deaths counted, per 100,000 people.

    ``cost`` is the perspective's total (cost_total); ``qalys`` is QALYs lived minus QALYs lost.
    """
    from oudsim.model.economics import discount_factors

    missing = [
        c for c in ("scenario", "replicate", "year", *METRICS, "cumulative_overdose_deaths") if c not in timeseries
    ]
    if missing:
        raise ValueError(f"the time series has no column {', '.join(missing)}: it predates the economics")
    rows = []
    for (scenario, replicate), g in timeseries.groupby(["scenario", "replicate"], sort=False):
        g = g[g["year"] > 0]
        d = discount_factors(g["year"].to_numpy(dtype=float), discount_rate)

        def pv(column: str, g: pd.DataFrame = g, d: np.ndarray = d) -> float:
            return float(np.sum(g[column].to_numpy(dtype=float) * d)) * PER

        health = sum(pv(c) for c in COST_SERVICES)
        rows.append(
            {
                "scenario": scenario,
                "replicate": int(replicate),
                "seed": int(g["seed"].iloc[0]) if "seed" in g else -1,
                "cost": pv("cost_total"),
                "cost_health_sector": health,
                "cost_societal": pv("cost_societal"),
                "qalys": pv("qalys_lived") - pv("qalys_lost"),
                "life_years_lost": pv("life_years_lost"),
                "overdoses": float(g["overdoses_per_100k"].sum()),
                "deaths": float(g["cumulative_overdose_deaths"].iloc[-1]) if len(g) else 0.0,
            }
        )
    return pd.DataFrame(rows)
