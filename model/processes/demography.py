"""8. Demography: background deaths, ageing, and replacement.

Background mortality = mortality_per_1000[age band] / 1000 * oud_mortality_hr^(OUD, in care or not).
Everyone who died this step (overdose or background) is replaced by a newcomer of ``entry_age``
drawn from the same inputs, in the same place in the network, so the population size is fixed.
"""

from __future__ import annotations

import numpy as np

from agents.states import Stage
from model.rates import prob, table, when


def step(m) -> None:
    p, pop, rng, dt = m.params.demography, m.population, m.rng, m.dt_years
    alive = pop.stage != Stage.DECEASED
    rate = table(p.mortality_per_1000, pop.age_band) * np.float32(1e-3) * when(pop.has_oud, p.oud_mortality_hr)
    dead = np.flatnonzero(alive & (rng.random(pop.n, dtype=np.float32) < prob(rate, dt)))
    m.kill(dead, cause="background")
    pop.age += np.float32(dt)
    m.replace_deceased()
