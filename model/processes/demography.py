"""8. Demography: background deaths, ageing, and replacement.

Background mortality = mortality_per_1000[age band] / 1000 * oud_mortality_hr^(OUD, in care or not)
                       * care_mortality_hr^(in OUD care),
and everyone who reaches ``max_age`` dies (the life table's closing row), so the age structure holds
steady. Everyone who died this step (overdose or background) is replaced by a newcomer of
``entry_age`` drawn from the same inputs, in the same place in the network but with ties of their own:
the dead person's ties end, and the newcomer's form anew (model/processes/social.py).
"""

from __future__ import annotations

import math

import numpy as np

from oudsim.agents.population import NEXT_BAND_AGE, mark_deceased
from oudsim.agents.states import Stage
from oudsim.model.binding import bind
from oudsim.model.jit import gap, log_skip, njit, prob, uniform
from oudsim.model.rates import log_hr, per_parameters, upper_bound

STREAMS = ("demography",)
# Counted as the dead are replaced (OUDModel.replace_deceased), with the life they lose (model.accounting).
FLOWS = ("deaths", "oud_deaths", "life_years_lost", "qalys_lost")


@njit(inline=True)
def mortality_log_hazard(base, age_rate, l_oud, oud, l_care, in_care):
    """log(mortality_per_1000[age band] / 1000) + log(oud_mortality_HR) * (OUD, in care or not)
    + log(care_mortality_HR) * (in OUD care)"""
    return base + age_rate + l_oud * oud + l_care * in_care


def step(m) -> None:
    args = _arguments(m)
    n_moved = _deaths_and_ageing(*args, m.log_table(), m.week)
    # Birthdays into the next age band (few each step): their cached per-group factors change.
    if n_moved:
        m.factors.update_rows(m.scratch[:n_moved], m.population.group)
    m.replace_deceased()


@per_parameters
def _arguments(m) -> tuple:
    p, pop = m.params.demography, m.population
    age_rate, top = m.factors.get("mortality", pop.group, age=p.mortality_per_1000)
    base, l_oud = float(log_hr(1e-3)), float(log_hr(p.oud_mortality_hr))  # per 1,000 -> per person
    l_care = float(log_hr(p.care_mortality_hr))
    return bind(
        _deaths_and_ageing, m.shared(), moved=m.scratch[: pop.n], band_starts=NEXT_BAND_AGE, age_rate=age_rate,
        base=base, l_oud=l_oud, l_care=l_care, max_age=np.float32(p.max_age),
        bound=upper_bound(mortality_log_hazard, base=base, age_rate=top, l_oud=l_oud, l_care=l_care),
    )  # fmt: skip


@njit
def _deaths_and_ageing(
    demography_stream, moved, age, age_band, group, next_band_age, band_starts, age_rate, base, l_oud, l_care,
    max_age, bound, dt, stage, stage_since, care, in_mh_care, waiting, has_oud, died, dead_rows, count, uid, table,
    week,
):  # fmt: skip
    """Background deaths (marked as they are found), then everyone a step older, and those who reach
    the closing age die. Returns how many moved into the next age band (their rows are the first
    entries of ``moved``)."""
    s = demography_stream
    n = stage.size
    p_max = prob(math.exp(min(bound, 50.0)), dt)
    if p_max > 0.0:
        lq = log_skip(p_max)
        i = gap(s, lq)
        while i < n:
            lh = mortality_log_hazard(base, age_rate[i], l_oud, has_oud[stage[i]], l_care, stage[i] == Stage.TREATMENT)
            if uniform(s) * p_max < prob(math.exp(lh), dt) and stage[i] != Stage.DECEASED:
                mark_deceased(
                    i, stage, stage_since, care, in_mh_care, waiting, has_oud, died, dead_rows, table, count, uid, week
                )
            i += 1 + gap(s, lq)
    b = 0
    step_years = np.float32(dt)
    for i in range(n):
        age[i] += step_years
        if age[i] >= max_age and stage[i] != Stage.DECEASED:
            mark_deceased(
                i, stage, stage_since, care, in_mh_care, waiting, has_oud, died, dead_rows, table, count, uid, week
            )
        if age[i] >= next_band_age[i]:  # a birthday into the next age band: group = (band * 3 + SES) * 3 + ACE
            band = age_band[i] + 1
            age_band[i] = band
            group[i] += 9
            next_band_age[i] = band_starts[band]
            moved[b] = i
            b += 1
    return b
