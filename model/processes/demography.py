"""8. Demography: background deaths, ageing, and replacement.

Background mortality = mortality_per_1000[age band] / 1000 * oud_mortality_hr^(OUD, in care or not).
Everyone who died this step (overdose or background) is replaced by a newcomer of ``entry_age``
drawn from the same inputs, in the same place in the network, so the population size is fixed.
"""

from __future__ import annotations

import numpy as np

from agents.states import HAS_OUD, Stage
from model.rates import events_bounded, log_hr, pos, rows_where


def step(m) -> None:
    p, pop, rng, dt = m.params.demography, m.population, m.rng, m.dt_years
    static, top = m.factors.get("mortality", pop.group, age=p.mortality_per_1000)
    base, l_oud = log_hr(1e-3), log_hr(p.oud_mortality_hr)
    st = pop.stage

    def log_death(i: np.ndarray) -> np.ndarray:
        return base + static[i] + l_oud * HAS_OUD.take(st[i])

    dead = events_bounded(rng, pop.n, base + top + pos(l_oud), log_death, dt)
    dead = dead[st[dead] != Stage.DECEASED.value]
    m.kill(dead, cause="background")
    pop.age += np.float32(dt)
    # Birthdays into the next age band (few each step): their group, and their cached factors, change.
    moved = rows_where(pop.age >= pop.next_band_age)
    if moved.size:
        pop.set_age_band(moved)
        m.factors.update_rows(moved, pop.group)
    m.replace_deceased()
