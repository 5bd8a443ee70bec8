"""8. Demography: background deaths, ageing, and replacement.

Background mortality = mortality_per_1000[age band] / 1000 * oud_mortality_hr^(OUD, in care or not).
Everyone who died this step (overdose or background) is replaced by a newcomer of ``entry_age``
drawn from the same inputs, in the same place in the network, so the population size is fixed.
"""

from __future__ import annotations

import numpy as np

from agents.states import Stage
from agents.population import band_of, group_of
from model.rates import events, log_by_group, log_hr


def step(m) -> None:
    p, pop, rng, dt = m.params.demography, m.population, m.rng, m.dt_years
    log_rate = log_by_group(pop.group, age=p.mortality_per_1000) + log_hr(1e-3)
    log_rate += log_hr(p.oud_mortality_hr) * pop.has_oud
    dead = events(rng, log_rate, dt)
    dead = dead[pop.stage[dead] != Stage.DECEASED]
    m.kill(dead, cause="background")
    pop.age += np.float32(dt)
    band = band_of(pop.age)
    moved = np.flatnonzero(band != pop.age_band)  # only people who crossed into the next band
    pop.age_band[moved] = band[moved]
    pop.group[moved] = group_of(band[moved], pop.ses[moved], pop.ace[moved])
    m.replace_deceased()
