"""7. Overdose: who overdoses, who is alone when it happens, who dies.

Overdose rate = rate_oud * stage_HR (misuse_hr, 1 for untreated OUD, treatment_hr in care, remission_hr)
              * lost_tolerance_HR^(weeks after leaving care or relapsing)
Using alone: P(alone) = clip(alone_base + alone_loneliness * loneliness + alone_stigma * internalised stigma)
Death: fatality if alone; otherwise fatality * witnessed_fatality_factor * (1 - naloxone_coverage * naloxone_efficacy).
Naloxone helps only when someone is there. Ties of someone who dies have a stressful event with
probability ``life_events.bereavement_prob``.
"""

from __future__ import annotations

import numpy as np

from agents.states import Stage
from model.rates import occurs, when


def step(m) -> None:
    p, pop, rng, dt, wk = m.params.overdose, m.population, m.rng, m.dt_years, m.week
    st = pop.stage
    i = np.flatnonzero((st != Stage.NONE) & (st != Stage.DECEASED))
    stage_hr = np.array([0.0, p.misuse_hr, 1.0, p.treatment_hr, p.remission_hr, 0.0], dtype=np.float32)
    h = np.float32(p.rate_oud) * stage_hr[st[i]] * when(pop.lost_tolerance_until[i] > wk, p.lost_tolerance_hr)
    od = i[occurs(rng, h, dt)]
    if od.size == 0:
        return
    pop.last_overdose[od] = wk
    p_alone = np.clip(p.alone_base + p.alone_loneliness * pop.loneliness[od] + p.alone_stigma * pop.internal_stigma[od], 0.0, 1.0)
    alone = rng.random(od.size) < p_alone
    rescued = 1.0 - p.naloxone_coverage * p.naloxone_efficacy
    p_die = p.fatality * np.where(alone, 1.0, p.witnessed_fatality_factor * rescued)
    dead = od[rng.random(od.size) < p_die]
    m.flows["overdoses"] += od.size
    m.flows["overdose_deaths"] += dead.size
    m.flows["alone_overdoses"] += int(alone.sum())
    m.kill(dead, cause="overdose")
    # Bereavement: an overdose death is a stressful event for the person's ties.
    nbrs = m.network.neighbours_of(dead)
    hit = nbrs[rng.random(nbrs.size) < m.params.life_events.bereavement_prob]
    pop.last_event[hit] = wk
