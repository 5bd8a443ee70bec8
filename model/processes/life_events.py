"""1. Life events: stressful events (trauma, job loss, bereavement) by SES and ACE group.

A recent event (within ``life_events.recent_weeks``) raises mental-health onset, initiation and relapse.
Bereavement from an overdose death is added by the overdose process.
"""

from __future__ import annotations

import numpy as np

from model.rates import prob, table


def step(m) -> None:
    p, pop = m.params.life_events, m.population
    rate = p.rate * table(p.ses_hr, pop.ses) * table(p.ace_hr, pop.ace)
    hit = m.rng.random(pop.n, dtype=np.float32) < prob(rate, m.dt_years)
    pop.last_event[hit] = m.week


def recent(m) -> np.ndarray:
    """Whether each person had an event within the recent window."""
    return (m.week - m.population.last_event) < m.params.life_events.recent_weeks
