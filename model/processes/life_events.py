"""1. Life events: stressful events (trauma, job loss, bereavement) by SES and ACE group.

Rate = rate * SES_HR[ses] * ACE_HR[ace]. A recent event (within ``life_events.recent_weeks``) raises
mental-health onset, initiation and relapse; ``m.recent`` holds it for the rest of the step.
Bereavement after an overdose death is added by the overdose process.
"""

from __future__ import annotations

from model.rates import events_bounded, log_hr


def step(m) -> None:
    p, pop = m.params.life_events, m.population
    static, top = m.factors.get("life_events", pop.group, ses=p.ses_hr, ace=p.ace_hr)
    base = log_hr(p.rate)
    hit = events_bounded(m.rng, pop.n, base + top, lambda i: base + static[i], m.dt_years)
    pop.last_event[hit] = m.week
    m.recent = (m.week - pop.last_event) < p.recent_weeks
