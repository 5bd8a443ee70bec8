"""7. Overdose: who overdoses, who is alone when it happens, who dies.

Overdose rate = rate_oud * stage_HR (misuse_hr, 1 for untreated OUD, treatment_hr in care, remission_hr)
              * lost_tolerance_HR^(weeks after leaving care or relapsing)
Using alone: P(alone) = clip(alone_base + alone_loneliness * loneliness + alone_stigma * internalised stigma)
Death: fatality if alone; otherwise fatality * witnessed_fatality_factor * (1 - naloxone_coverage * naloxone_efficacy).
Naloxone helps only when someone is there. Ties of someone who dies have a stressful event with
probability ``life_events.bereavement_prob``.
"""

from __future__ import annotations

import functools

import numpy as np

from model.rates import F32, events_bounded, log_hr, pos


@functools.lru_cache(maxsize=256)  # rebuilt only when the ratios change
def _log_stage_hr(misuse_hr: float, treatment_hr: float, remission_hr: float) -> np.ndarray:
    """log overdose ratio by stage (no use and deceased: no overdose)."""
    out = np.array([log_hr(h) for h in (0.0, misuse_hr, 1.0, treatment_hr, remission_hr, 0.0)], dtype=F32)
    out.flags.writeable = False
    return out


def step(m) -> None:
    p, pop, rng, dt, wk = m.params.overdose, m.population, m.rng, m.dt_years, m.week
    st = pop.stage
    log_stage = _log_stage_hr(p.misuse_hr, p.treatment_hr, p.remission_hr)
    base, l_tol = log_hr(p.rate_oud), log_hr(p.lost_tolerance_hr)
    bound = base + float(log_stage.max()) + pos(l_tol)

    def log_overdose(i: np.ndarray) -> np.ndarray:
        return base + log_stage[st[i]] + l_tol * (pop.lost_tolerance_until[i] > wk)

    od = events_bounded(rng, pop.n, bound, log_overdose, dt)
    if od.size == 0:
        return
    pop.last_overdose[od] = wk
    p_alone = p.alone_base + p.alone_loneliness * pop.loneliness[od] + p.alone_stigma * pop.internal_stigma[od]
    p_alone = np.clip(p_alone, 0.0, 1.0)
    alone = rng.random(od.size) < p_alone
    rescued = 1.0 - p.naloxone_coverage * p.naloxone_efficacy
    p_die = p.fatality * np.where(alone, 1.0, p.witnessed_fatality_factor * rescued)
    dead = od[rng.random(od.size) < p_die]
    m.flows["overdoses"] += od.size
    m.flows["overdose_deaths"] += dead.size
    m.flows["alone_overdoses"] += int(alone.sum())
    m.kill(dead, cause="overdose")
    if dead.size:
        # Bereavement: an overdose death is a stressful event for the person's ties.
        nbrs = m.network.neighbours_of(dead)
        hit = nbrs[rng.random(nbrs.size) < m.params.life_events.bereavement_prob]
        pop.last_event[hit] = wk
